"""pgoutput decoder: hand-built messages for every type, and real bytes from PostgreSQL's pgoutput plugin."""

from __future__ import annotations

import struct
import uuid

import asyncpg
import pytest

from madbase.realtime import pgoutput as p


def _s(text: str) -> bytes:
    return text.encode() + b"\0"


def _tuple(*values: str | p.Unchanged | None) -> bytes:
    out = struct.pack("!h", len(values))
    for v in values:
        if v is None:
            out += b"n"
        elif isinstance(v, p.Unchanged):
            out += b"u"
        else:
            raw = v.encode()
            out += b"t" + struct.pack("!i", len(raw)) + raw
    return out


def test_begin_commit_origin() -> None:
    b = p.decode(b"B" + struct.pack("!QqI", 0x1_0000_0010, 1_000_000, 42))
    assert b == p.Begin(0x1_0000_0010, p.pg_time(1_000_000), 42)
    assert b.commit_time.isoformat() == "2000-01-01T00:00:01+00:00"
    c = p.decode(b"C" + struct.pack("!BQQq", 0, 5, 9, 0))
    assert c == p.Commit(0, 5, 9, p.PG_EPOCH)
    assert p.decode(b"O" + struct.pack("!Q", 7) + _s("node1")) == p.Origin(7, "node1")


def test_relation_type_and_cache() -> None:
    raw = (b"R" + struct.pack("!I", 16384) + _s("public") + _s("todos") + b"f" + struct.pack("!h", 2)
           + b"\x01" + _s("id") + struct.pack("!Ii", 20, -1) + b"\x00" + _s("title") + struct.pack("!Ii", 25, -1))
    rel = p.decode(raw)
    assert rel == p.Relation(16384, "public", "todos", "f",
                             (p.Column("id", 20, -1, True), p.Column("title", 25, -1, False)))
    typ = p.decode(b"Y" + struct.pack("!I", 99999) + _s("public") + _s("mood"))
    cache = p.RelationCache()
    cache.feed(rel)
    cache.feed(typ)
    assert cache.get(16384) is rel
    assert cache.types[99999].name == "mood"
    with pytest.raises(p.DecodeError):
        cache.get(1)


def test_insert_update_delete_truncate() -> None:
    rid = struct.pack("!I", 5)
    assert p.decode(b"I" + rid + b"N" + _tuple("1", None, p.UNCHANGED)) == p.Insert(5, ("1", None, p.UNCHANGED))
    assert p.decode(b"U" + rid + b"N" + _tuple("1", "x")) == p.Update(5, ("1", "x"))
    assert p.decode(b"U" + rid + b"K" + _tuple("1", None) + b"N" + _tuple("2", "y")) == \
        p.Update(5, ("2", "y"), ("1", None), "K")
    assert p.decode(b"U" + rid + b"O" + _tuple("1", "é") + b"N" + _tuple("1", "z")) == \
        p.Update(5, ("1", "z"), ("1", "é"), "O")
    assert p.decode(b"D" + rid + b"K" + _tuple("3")) == p.Delete(5, ("3",), "K")
    assert p.decode(b"T" + struct.pack("!iB", 2, 1) + struct.pack("!II", 5, 6)) == p.Truncate((5, 6), True, False)


@pytest.mark.parametrize("raw", [b"", b"Z", b"B\x00", b"I" + struct.pack("!I", 1) + b"X",
                                 b"I" + struct.pack("!I", 1) + b"N" + struct.pack("!h", 1) + b"t\x00\x00\x00\x09ab",
                                 b"R" + struct.pack("!I", 1) + b"nonterminated"])
def test_malformed(raw: bytes) -> None:
    with pytest.raises(p.DecodeError):
        p.decode(raw)


def test_lsn_text() -> None:
    assert p.format_lsn(0x16_B374D848) == "16/B374D848"
    assert p.parse_lsn("16/B374D848") == 0x16_B374D848


async def test_real_pgoutput_stream(fresh_db: str) -> None:
    conn = await asyncpg.connect(fresh_db)
    slot = "t_" + uuid.uuid4().hex[:10]
    try:
        await conn.execute("create table items(id int8 primary key, title text, data jsonb, n numeric)")
        await conn.execute("alter table items replica identity full")
        await conn.execute("create publication tp for table items")
        await conn.execute(f"select pg_create_logical_replication_slot('{slot}', 'pgoutput')")
        await conn.execute("""insert into items values (1, 'a', '{"k": [1]}', 1.50)""")
        await conn.execute("update items set title = null where id = 1")
        await conn.execute("delete from items where id = 1")
        await conn.execute("truncate items")
        rows = await conn.fetch(
            f"select data from pg_logical_slot_get_binary_changes('{slot}', null, null, "
            "'proto_version', '1', 'publication_names', 'tp')")
        msgs = [p.decode(bytes(r["data"])) for r in rows]
        kinds = [type(m).__name__ for m in msgs]
        assert kinds == ["Begin", "Relation", "Insert", "Commit", "Begin", "Update", "Commit",
                         "Begin", "Delete", "Commit", "Begin", "Relation", "Truncate", "Commit"]
        rel = msgs[1]
        assert isinstance(rel, p.Relation)
        assert (rel.namespace, rel.name, rel.replica_identity) == ("public", "items", "f")
        assert [(c.name, c.type_oid) for c in rel.columns] == [("id", 20), ("title", 25), ("data", 3802),
                                                                  ("n", 1700)]
        assert msgs[2] == p.Insert(rel.relation_id, ("1", "a", '{"k": [1]}', "1.50"))
        upd = msgs[5]
        assert isinstance(upd, p.Update)
        assert upd.new == ("1", None, '{"k": [1]}', "1.50") and upd.old_kind == "O"
        assert msgs[8] == p.Delete(rel.relation_id, ("1", None, '{"k": [1]}', "1.50"), "O")
        commit = msgs[3]
        begin = msgs[0]
        assert isinstance(commit, p.Commit) and isinstance(begin, p.Begin)
        assert commit.commit_lsn == begin.final_lsn and commit.end_lsn > commit.commit_lsn
    finally:
        await conn.execute(f"select pg_drop_replication_slot('{slot}') from pg_replication_slots "
                           f"where slot_name = '{slot}'")
        await conn.close()
