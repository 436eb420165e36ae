"""Sans-I/O Phoenix channel protocol as Supabase Realtime speaks it: frames, join config, replies, pushes.

Frames: vsn 1.0.0 JSON objects (realtime-py), vsn 2.0.0 JSON arrays `[join_ref, ref, topic, event, payload]`
(realtime-js) plus binary broadcast frames — kind 3 (client → server user broadcast push) and kind 4
(server → client user broadcast). A broadcast payload that is raw bytes is carried as `bytes` in the
message's `payload["payload"]` and can only be delivered to vsn 2 sockets, in a kind 4 frame.

Everything here is pure: bytes/str in, `Message` out and back; the socket adapter does the I/O.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

VSN1: Final = "1.0.0"
VSN2: Final = "2.0.0"
KIND_PUSH: Final = 3
KIND_BROADCAST: Final = 4
ENC_BINARY: Final = 0
ENC_JSON: Final = 1
PG_EVENTS: Final = ("*", "INSERT", "UPDATE", "DELETE")


class ProtocolError(ValueError):
    """A frame that cannot be understood; the socket answers with an error or ignores it."""


@dataclass(slots=True)
class Message:
    topic: str
    event: str
    payload: Any
    ref: str | None = None
    join_ref: str | None = None


def _opt_str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    raise ProtocolError("ref must be a string or null")


def decode_text(text: str | bytes) -> Message:
    """A text frame of either serializer: vsn 1 sends objects, vsn 2 arrays (told apart by shape)."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ProtocolError("frame is not valid JSON") from None
    if isinstance(data, list):
        if len(data) != 5:
            raise ProtocolError("array frame must have 5 elements")
        join_ref, ref, topic, event, payload = data
    elif isinstance(data, dict):
        join_ref, ref = data.get("join_ref"), data.get("ref")
        topic, event, payload = data.get("topic"), data.get("event"), data.get("payload")
    else:
        raise ProtocolError("frame must be a JSON array or object")
    if not isinstance(topic, str) or not isinstance(event, str):
        raise ProtocolError("topic and event must be strings")
    if payload is None:
        payload = {}
    return Message(topic, event, payload, _opt_str(ref), _opt_str(join_ref))


def decode_binary(data: bytes) -> Message:
    """A kind 3 user broadcast push → a `broadcast` message with payload {type, event, payload[, meta]}."""
    if len(data) < 7 or data[0] != KIND_PUSH:
        raise ProtocolError("unsupported binary frame")
    jr_len, ref_len, topic_len, ev_len, meta_len, encoding = struct.unpack_from("!6B", data, 1)
    pos = 7
    end = pos + jr_len + ref_len + topic_len + ev_len + meta_len
    if end > len(data):
        raise ProtocolError("binary frame is truncated")

    def take(n: int) -> str:
        nonlocal pos
        chunk = data[pos:pos + n]
        pos += n
        return chunk.decode("utf-8")

    try:
        join_ref, ref, topic, event, meta = take(jr_len), take(ref_len), take(topic_len), take(ev_len), take(meta_len)
    except UnicodeDecodeError:
        raise ProtocolError("binary frame header is not UTF-8") from None
    raw = data[pos:]
    body: dict[str, Any] = {"type": "broadcast", "event": event}
    if encoding == ENC_JSON:
        try:
            body["payload"] = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            raise ProtocolError("broadcast payload is not valid JSON") from None
    elif encoding == ENC_BINARY:
        body["payload"] = bytes(raw)
    else:
        raise ProtocolError("unknown payload encoding")
    if meta:
        try:
            parsed = orjson.loads(meta)
        except orjson.JSONDecodeError:
            raise ProtocolError("broadcast metadata is not valid JSON") from None
        if isinstance(parsed, dict):
            body["meta"] = parsed
    return Message(topic, "broadcast", body, ref or None, join_ref or None)


def _utf8(text: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > 255:
        raise ProtocolError("field longer than 255 bytes cannot go in a binary frame")
    return raw


def encode_binary_broadcast(topic: str, event: str, payload: Any, meta: dict[str, Any] | None = None) -> bytes:
    """A kind 4 user broadcast frame (payload bytes as binary, anything else as JSON)."""
    t, e = _utf8(topic), _utf8(event)
    m = orjson.dumps(meta) if meta else b""
    if len(m) > 255:
        m = b""
    if isinstance(payload, bytes | bytearray | memoryview):
        enc, body = ENC_BINARY, bytes(payload)
    else:
        enc, body = ENC_JSON, orjson.dumps(payload)
    return bytes((KIND_BROADCAST, len(t), len(e), len(m), enc)) + t + e + m + body


def is_binary_broadcast(msg: Message) -> bool:
    return (msg.event == "broadcast" and isinstance(msg.payload, dict)
            and isinstance(msg.payload.get("payload"), bytes | bytearray))


def encode(vsn: str, msg: Message) -> str | bytes | None:
    """Serialize for a socket of protocol `vsn`; None when the message cannot be represented (binary → vsn 1)."""
    if is_binary_broadcast(msg):
        if vsn != VSN2:
            return None
        body = msg.payload
        return encode_binary_broadcast(msg.topic, str(body.get("event", "")), body["payload"], body.get("meta"))
    if vsn == VSN2:
        return orjson.dumps([msg.join_ref, msg.ref, msg.topic, msg.event, msg.payload]).decode()
    return orjson.dumps({"topic": msg.topic, "event": msg.event, "payload": msg.payload, "ref": msg.ref,
                         "join_ref": msg.join_ref}).decode()


# -- replies and pushes -------------------------------------------------------------------------------

def reply(req: Message, status: str = "ok", response: dict[str, Any] | None = None) -> Message:
    return Message(req.topic, "phx_reply", {"status": status, "response": response or {}}, req.ref, req.join_ref)


def error_reply(req: Message, reason: str) -> Message:
    return reply(req, "error", {"reason": reason})


def push(topic: str, event: str, payload: Any, join_ref: str | None = None) -> Message:
    return Message(topic, event, payload, None, join_ref)


def system(topic: str, extension: str, status: str, message: str, join_ref: str | None = None) -> Message:
    channel = topic.removeprefix("realtime:")
    return push(topic, "system", {"channel": channel, "extension": extension, "message": message,
                                  "status": status}, join_ref)


def close(topic: str, join_ref: str | None = None) -> Message:
    return push(topic, "phx_close", {}, join_ref)


# -- join config --------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PgBinding:
    """One postgres_changes entry of a join, as sent (echoed back verbatim) plus its integer id."""

    event: str
    schema: str
    table: str | None
    filter: str | None
    raw: dict[str, Any]
    id: int
    select: tuple[str, ...] | None = None  # column subset (Realtime 2026); the primary key is always sent

    @property
    def echo(self) -> dict[str, Any]:
        return {**self.raw, "id": self.id}


@dataclass(frozen=True, slots=True)
class JoinConfig:
    name: str
    broadcast_self: bool = False
    broadcast_ack: bool = False
    presence_key: str = ""
    presence_enabled: bool = False
    private: bool = False
    bindings: tuple[PgBinding, ...] = field(default=())
    access_token: str | None = None
    replication_ready: bool = False
    replay: tuple[int, int] | None = None  # broadcast.replay: (since, in ms since the epoch; limit)


_PRIVATE_ROOM = "private\x00"


def room_of(topic: str, private: bool) -> str:
    """The hub's key for a topic: private and public channels of one name are separate rooms (as Supabase's
    `<tenant>-private:<topic>`), so neither receives the other's broadcasts or presence."""
    return _PRIVATE_ROOM + topic if private else topic


def wire_topic(room: str) -> str:
    """The topic as the client knows it (`realtime:<name>`) of a room key."""
    return room.removeprefix(_PRIVATE_ROOM)


def binding_id(event: str, schema: str, table: str | None, filt: str | None) -> int:
    """A stable positive integer for a binding's parameters (Realtime uses a hash of them too)."""
    key = orjson.dumps([event, schema, table or "*", filt or ""], option=orjson.OPT_SORT_KEYS)
    return zlib.crc32(key) & 0x7FFFFFF


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def parse_join(msg: Message) -> JoinConfig:
    """Validate a phx_join; raises ProtocolError with the reason the client will show."""
    if not msg.topic.startswith("realtime:"):
        raise ProtocolError("Topic must start with realtime:")
    name = msg.topic[len("realtime:"):]
    if not name:
        raise ProtocolError("TopicNameRequired: You must provide a topic name")
    payload = _dict(msg.payload)
    config = _dict(payload.get("config"))
    broadcast = _dict(config.get("broadcast"))
    presence = _dict(config.get("presence"))
    token = payload.get("access_token")
    bindings: list[PgBinding] = []
    changes = config.get("postgres_changes") or []
    if not isinstance(changes, list):
        raise ProtocolError("postgres_changes must be a list")
    for entry in changes:
        if not isinstance(entry, dict):
            raise ProtocolError("postgres_changes entries must be objects")
        event = entry.get("event", "*")
        schema = entry.get("schema", "public")
        table = entry.get("table")
        filt = entry.get("filter")
        if not isinstance(event, str) or event.upper() not in PG_EVENTS:
            raise ProtocolError(f"Invalid postgres_changes event {event!r}")
        if not isinstance(schema, str) or not schema:
            raise ProtocolError("postgres_changes schema must be a string")
        if table is not None and not isinstance(table, str):
            raise ProtocolError("postgres_changes table must be a string")
        if filt is not None and not isinstance(filt, str):
            raise ProtocolError("postgres_changes filter must be a string")
        select = entry.get("select")
        if select is not None and (not isinstance(select, list) or not all(isinstance(c, str) for c in select)):
            raise ProtocolError("postgres_changes select must be a list of column names")
        table = None if table in (None, "*", "") else table
        filt = filt or None
        bindings.append(PgBinding(event.upper(), schema, table, filt, dict(entry),
                                  binding_id(event.upper(), schema, table, filt),
                                  tuple(select) if select else None))
    replay: tuple[int, int] | None = None
    if broadcast.get("replay") is not None:
        raw = broadcast["replay"]
        since, limit = (raw.get("since", 0), raw.get("limit", 10)) if isinstance(raw, dict) else (None, None)
        if not isinstance(since, int) or isinstance(since, bool) or since < 0 \
                or not isinstance(limit, int) or isinstance(limit, bool):
            raise ProtocolError("UnableToReplayMessages: Replay params are not valid")
        replay = (since, limit)
    key = presence.get("key", "")
    return JoinConfig(
        name=name,
        broadcast_self=bool(broadcast.get("self", False)),
        broadcast_ack=bool(broadcast.get("ack", False)),
        presence_key=key if isinstance(key, str) else str(key),
        presence_enabled=bool(presence.get("enabled", False)),
        private=bool(config.get("private", False)),
        bindings=tuple(bindings),
        access_token=token if isinstance(token, str) and token else None,
        replication_ready=bool(broadcast.get("replication_ready", False)),
        replay=replay,
    )
