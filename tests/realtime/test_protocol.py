"""Phoenix channel frames (vsn 1 and 2, binary kinds 3/4), join config parsing, filters and value conversion."""

from __future__ import annotations

import struct

import orjson
import pytest

from madbase.realtime import protocol as pr
from madbase.realtime.filters import FilterError, parse_filter
from madbase.realtime.values import to_json_value


def _kind3(join_ref: str, ref: str, topic: str, event: str, meta: bytes, enc: int, body: bytes) -> bytes:
    parts = [x.encode() for x in (join_ref, ref, topic, event)]
    return (bytes([3, *(len(x) for x in parts), len(meta), enc]) + b"".join(parts) + meta + body)


def test_decode_text_v1_v2() -> None:
    m2 = pr.decode_text('["1","2","realtime:x","phx_join",{"a":1}]')
    assert m2 == pr.Message("realtime:x", "phx_join", {"a": 1}, "2", "1")
    m1 = pr.decode_text('{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"5"}')
    assert m1 == pr.Message("phoenix", "heartbeat", {}, "5", None)
    for bad in ("[1,2]", "nope", '{"topic":1}', "3"):
        with pytest.raises(pr.ProtocolError):
            pr.decode_text(bad)


def test_decode_binary_push_json_and_binary() -> None:
    m = pr.decode_binary(_kind3("1", "7", "realtime:room", "msg", b"", 1, b'{"x":1}'))
    assert m == pr.Message("realtime:room", "broadcast", {"type": "broadcast", "event": "msg", "payload": {"x": 1}},
                           "7", "1")
    m = pr.decode_binary(_kind3("1", "", "realtime:é", "bin", b'{"persist":true}', 0, b"\x00\xff"))
    assert m.payload == {"type": "broadcast", "event": "bin", "payload": b"\x00\xff", "meta": {"persist": True}}
    assert m.ref is None and m.topic == "realtime:é"
    with pytest.raises(pr.ProtocolError):
        pr.decode_binary(b"\x04\x00")
    with pytest.raises(pr.ProtocolError):
        pr.decode_binary(_kind3("1", "2", "t", "e", b"", 1, b"{")[:-3])


def test_encode_frames() -> None:
    msg = pr.push("realtime:a", "broadcast", {"type": "broadcast", "event": "e", "payload": {"k": "v"}})
    assert pr.encode(pr.VSN2, msg) == '[null,null,"realtime:a","broadcast",{"type":"broadcast","event":"e",' \
        '"payload":{"k":"v"}}]'
    assert orjson.loads(pr.encode(pr.VSN1, msg) or "") == {"topic": "realtime:a", "event": "broadcast",
                                                           "payload": msg.payload, "ref": None, "join_ref": None}
    binmsg = pr.push("realtime:a", "broadcast", {"type": "broadcast", "event": "e", "payload": b"\x01\x02"})
    frame = pr.encode(pr.VSN2, binmsg)
    assert isinstance(frame, bytes)
    assert frame[:5] == bytes([4, 10, 1, 0, 0]) and frame[5:15] == b"realtime:a" and frame[-2:] == b"\x01\x02"
    assert pr.encode(pr.VSN1, binmsg) is None
    js = pr.encode_binary_broadcast("t", "e", {"a": 1}, {"persist": True})
    tl, el, ml, enc = struct.unpack_from("!4B", js, 1)
    assert (tl, el, enc) == (1, 1, 1) and js[7:7 + ml] == b'{"persist":true}' and js[7 + ml:] == b'{"a":1}'


def test_replies() -> None:
    req = pr.Message("realtime:a", "phx_join", {}, "3", "3")
    assert pr.reply(req, "ok", {"postgres_changes": []}) == pr.Message(
        "realtime:a", "phx_reply", {"status": "ok", "response": {"postgres_changes": []}}, "3", "3")
    assert pr.error_reply(req, "nope").payload == {"status": "error", "response": {"reason": "nope"}}
    assert pr.system("realtime:a", "postgres_changes", "ok", "Subscribed to PostgreSQL").payload == {
        "channel": "a", "extension": "postgres_changes", "message": "Subscribed to PostgreSQL", "status": "ok"}


def test_parse_join() -> None:
    payload = {"config": {"broadcast": {"self": True, "ack": True}, "presence": {"key": "u1", "enabled": True},
                          "postgres_changes": [{"event": "*", "schema": "public", "table": "todos",
                                                "filter": "id=eq.1"}, {"event": "INSERT", "schema": "public"}],
                          "private": False},
               "access_token": "tok"}
    cfg = pr.parse_join(pr.Message("realtime:room", "phx_join", payload, "1", "1"))
    assert cfg.name == "room" and cfg.broadcast_self and cfg.broadcast_ack and cfg.presence_enabled
    assert cfg.presence_key == "u1" and cfg.access_token == "tok"
    b0, b1 = cfg.bindings
    assert (b0.event, b0.schema, b0.table, b0.filter) == ("*", "public", "todos", "id=eq.1")
    assert b0.echo == {"event": "*", "schema": "public", "table": "todos", "filter": "id=eq.1", "id": b0.id}
    assert isinstance(b1.id, int) and b1.table is None and b0.id != b1.id
    assert b0.id == pr.binding_id("*", "public", "todos", "id=eq.1")
    with pytest.raises(pr.ProtocolError, match="TopicNameRequired"):
        pr.parse_join(pr.Message("realtime:", "phx_join", {}, "1", "1"))
    with pytest.raises(pr.ProtocolError):
        pr.parse_join(pr.Message("realtime:a", "phx_join", {"config": {"postgres_changes": [{"event": "X"}]}}))


def test_filters() -> None:
    rec = {"id": (20, "5"), "name": (25, "bob"), "ok": (16, "t"), "n": (1700, "2.5"), "z": (25, None)}
    cases = [("id=eq.5", True), ("id=eq.05", True), ("id=neq.5", False), ("id=lt.10", True), ("id=lte.4", False),
             ("id=gt.4", True), ("id=gte.6", False), ("name=eq.bob", True), ("name=in.(al,bob)", True),
             ('name=in.("a,b",c)', False), ("id=in.(1,2,5)", True), ("ok=eq.true", True), ("n=gt.2.4", True),
             ("z=eq.x", False), ("missing=eq.1", False)]
    for text, expected in cases:
        assert parse_filter(text).matches(rec) is expected, text
    assert parse_filter('name=in.("a,b",c)').values == ("a,b", "c")
    extended = [("name=like.b%", True), ("name=like.B%", False), ("name=ilike.B*", True), ("name=like.b_b", True),
                ("z=is.null", True), ("name=is.null", False), ("ok=is.true", True), ("ok=is.false", False),
                ("name=match.^b.b$", True), ("name=imatch.^BOB$", True), ("z=isdistinct.x", True),
                ("id=isdistinct.5", False), ("id=not.eq.5", False), ("id=not.in.(1,2)", True),
                ("z=not.eq.1", False), ("id=gt.1,name=eq.bob", True), ("id=gt.1,name=in.(x,y),ok=eq.true", False),
                ("name=in.(bob,al),id=lt.9", True)]
    for text, expected in extended:
        assert parse_filter(text).matches(rec) is expected, text
    for bad in ("id", "id=foo.1", "=eq.1", "id=in.1", 'id=in.("a)', "id=is.maybe", "id=match.("):
        with pytest.raises(FilterError):
            parse_filter(bad)


def test_values() -> None:
    dumps = orjson.dumps
    assert to_json_value(20, "12") == 12 and to_json_value(16, "f") is False and to_json_value(25, None) is None
    assert dumps(to_json_value(1700, "1.50")) == b"1.50" and to_json_value(1700, "NaN") == "NaN"
    assert dumps(to_json_value(3802, '{"a": [1, 2]}')) == b'{"a": [1, 2]}'
    assert to_json_value(701, "2.5") == 2.5
    assert to_json_value(1184, "2024-01-01 12:00:00.5+00") == "2024-01-01T12:00:00.5+00:00"
    assert to_json_value(1114, "2024-01-01 12:00:00") == "2024-01-01T12:00:00"
    assert to_json_value(1009, "{a,b}") == "{a,b}"
