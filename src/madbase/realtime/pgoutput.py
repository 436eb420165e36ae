"""Sans-I/O decoder for PostgreSQL's `pgoutput` logical replication protocol (proto_version 1).

Input: the payload bytes of one XLogData message (what psycopg2's `read_message().payload` returns with
`decode=False`). Output: one typed message (Begin, Commit, Origin, Relation, Type, Insert, Update, Delete,
Truncate). Tuple values stay as the text PostgreSQL sent (`None` for NULL, `UNCHANGED` for an unchanged
TOASTed value); turning them into JSON is `values.py`'s job. No I/O, no state: the relation cache that maps
a relation id to its columns lives in `RelationCache` below and is fed with the Relation messages.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

PG_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)


class Unchanged:
    """Marker for a TOASTed column whose value was not sent because it did not change."""

    _instance: Unchanged | None = None

    def __new__(cls) -> Unchanged:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Final = Unchanged()
Value = str | Unchanged | None


class DecodeError(ValueError):
    """The bytes are not a valid pgoutput message."""


@dataclass(frozen=True, slots=True)
class Begin:
    final_lsn: int
    commit_time: datetime
    xid: int


@dataclass(frozen=True, slots=True)
class Commit:
    flags: int
    commit_lsn: int
    end_lsn: int
    commit_time: datetime


@dataclass(frozen=True, slots=True)
class Origin:
    commit_lsn: int
    name: str


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type_oid: int
    type_modifier: int
    is_key: bool


@dataclass(frozen=True, slots=True)
class Relation:
    relation_id: int
    namespace: str
    name: str
    replica_identity: str  # 'd' default, 'n' nothing, 'f' full, 'i' index
    columns: tuple[Column, ...]


@dataclass(frozen=True, slots=True)
class Type:
    type_oid: int
    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class Insert:
    relation_id: int
    new: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class Update:
    relation_id: int
    new: tuple[Value, ...]
    old: tuple[Value, ...] | None = None
    old_kind: str | None = None  # 'K' = key columns only, 'O' = whole old row (REPLICA IDENTITY FULL)


@dataclass(frozen=True, slots=True)
class Delete:
    relation_id: int
    old: tuple[Value, ...]
    old_kind: str  # 'K' or 'O'


@dataclass(frozen=True, slots=True)
class Truncate:
    relation_ids: tuple[int, ...]
    cascade: bool
    restart_identity: bool


@dataclass(frozen=True, slots=True)
class LogicalMessage:
    transactional: bool
    lsn: int
    prefix: str
    content: bytes


Message = Begin | Commit | Origin | Relation | Type | Insert | Update | Delete | Truncate | LogicalMessage

_I8 = struct.Struct("!B")
_I16 = struct.Struct("!h")
_I32 = struct.Struct("!i")
_U32 = struct.Struct("!I")
_I64 = struct.Struct("!q")
_BEGIN = struct.Struct("!QqI")
_COMMIT = struct.Struct("!BQQq")


def pg_time(micros: int) -> datetime:
    """A pgoutput timestamp (µs since 2000-01-01 UTC) as an aware datetime."""
    return PG_EPOCH + timedelta(microseconds=micros)


def format_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def parse_lsn(text: str) -> int:
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


class _Reader:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0

    def need(self, n: int) -> None:
        if self.pos + n > len(self.buf):
            raise DecodeError("pgoutput message is truncated")

    def unpack(self, st: struct.Struct) -> tuple[int, ...]:
        self.need(st.size)
        values = st.unpack_from(self.buf, self.pos)
        self.pos += st.size
        return values

    def u8(self) -> int:
        return self.unpack(_I8)[0]

    def i16(self) -> int:
        return self.unpack(_I16)[0]

    def i32(self) -> int:
        return self.unpack(_I32)[0]

    def u32(self) -> int:
        return self.unpack(_U32)[0]

    def i64(self) -> int:
        return self.unpack(_I64)[0]

    def byte(self) -> str:
        return chr(self.u8())

    def string(self) -> str:
        end = self.buf.find(b"\0", self.pos)
        if end < 0:
            raise DecodeError("pgoutput string is not terminated")
        text = self.buf[self.pos:end].decode("utf-8")
        self.pos = end + 1
        return text

    def raw(self, n: int) -> bytes:
        if n < 0:
            raise DecodeError("negative length in pgoutput message")
        self.need(n)
        data = self.buf[self.pos:self.pos + n]
        self.pos += n
        return data

    def tuple_data(self) -> tuple[Value, ...]:
        count = self.i16()
        values: list[Value] = []
        for _ in range(count):
            kind = self.byte()
            if kind == "n":
                values.append(None)
            elif kind == "u":
                values.append(UNCHANGED)
            elif kind == "t":
                values.append(self.raw(self.i32()).decode("utf-8"))
            elif kind == "b":
                raise DecodeError("binary tuple values are not supported (proto_version 1, text mode)")
            else:
                raise DecodeError(f"unknown tuple value kind {kind!r}")
        return tuple(values)


def decode(payload: bytes) -> Message:
    """Decode one pgoutput message; raises DecodeError for malformed or unsupported input."""
    if not payload:
        raise DecodeError("empty pgoutput message")
    r = _Reader(payload)
    tag = r.byte()
    if tag == "B":
        final_lsn, ts, xid = r.unpack(_BEGIN)
        return Begin(final_lsn, pg_time(ts), xid)
    if tag == "C":
        flags, commit_lsn, end_lsn, ts = r.unpack(_COMMIT)
        return Commit(flags, commit_lsn, end_lsn, pg_time(ts))
    if tag == "O":
        return Origin(r.unpack(struct.Struct("!Q"))[0], r.string())
    if tag == "R":
        rel_id = r.u32()
        namespace = r.string()
        name = r.string()
        identity = r.byte()
        ncols = r.i16()
        cols = []
        for _ in range(ncols):
            flags = r.u8()
            col_name = r.string()
            type_oid = r.u32()
            typmod = r.i32()
            cols.append(Column(col_name, type_oid, typmod, bool(flags & 1)))
        return Relation(rel_id, namespace or "pg_catalog", name, identity, tuple(cols))
    if tag == "Y":
        oid = r.u32()
        return Type(oid, r.string(), r.string())
    if tag == "I":
        rel_id = r.u32()
        if r.byte() != "N":
            raise DecodeError("Insert without a new tuple")
        return Insert(rel_id, r.tuple_data())
    if tag == "U":
        rel_id = r.u32()
        kind = r.byte()
        old: tuple[Value, ...] | None = None
        old_kind: str | None = None
        if kind in ("K", "O"):
            old_kind = kind
            old = r.tuple_data()
            kind = r.byte()
        if kind != "N":
            raise DecodeError("Update without a new tuple")
        return Update(rel_id, r.tuple_data(), old, old_kind)
    if tag == "D":
        rel_id = r.u32()
        kind = r.byte()
        if kind not in ("K", "O"):
            raise DecodeError("Delete without an old tuple")
        return Delete(rel_id, r.tuple_data(), kind)
    if tag == "T":
        nrels = r.i32()
        options = r.u8()
        rels = tuple(r.u32() for _ in range(nrels))
        return Truncate(rels, bool(options & 1), bool(options & 2))
    if tag == "M":
        transactional = bool(r.u8())
        lsn = r.i64()
        prefix = r.string()
        content = r.raw(r.i32())
        return LogicalMessage(transactional, lsn, prefix, content)
    raise DecodeError(f"unknown pgoutput message type {tag!r}")


@dataclass(slots=True)
class RelationCache:
    """Relation id → Relation, kept current from the stream's Relation messages (sent before first use and
    again after every schema change), plus type names from Type messages for non-builtin types."""

    relations: dict[int, Relation] = field(default_factory=dict)
    types: dict[int, Type] = field(default_factory=dict)

    def feed(self, message: Message) -> None:
        if isinstance(message, Relation):
            self.relations[message.relation_id] = message
        elif isinstance(message, Type):
            self.types[message.type_oid] = message

    def get(self, relation_id: int) -> Relation:
        rel = self.relations.get(relation_id)
        if rel is None:
            raise DecodeError(f"change for unknown relation {relation_id}")
        return rel
