"""The TypeScript `Database` type of a project's schemas, in the shape `supabase gen types typescript` prints
and supabase-js's `createClient<Database>()` reads: per schema `Tables` (Row / Insert / Update /
Relationships), `Views`, `Functions` (Args / Returns), `Enums`, `CompositeTypes`; then the `Tables`,
`TablesInsert`, `TablesUpdate`, `Enums`, `CompositeTypes` helpers and the `Constants` object (enum values).

Pure: rendered from a `typecatalog.Catalog`. Type mapping as Supabase's generator: numbers, strings, booleans,
`Json` for json/jsonb, arrays `T[]`, enums as unions of their labels, composite types and relation row
types by reference, domains as their base type, anything else `unknown`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from madbase.rest.typecatalog import Catalog

NUMBERS = frozenset({"int2", "int4", "int8", "float4", "float8", "numeric", "oid", "money"})
STRINGS = frozenset({"bytea", "bpchar", "varchar", "date", "text", "citext", "time", "timetz", "timestamp",
                     "timestamptz", "uuid", "vector", "halfvec", "sparsevec", "name", "char", "interval",
                     "inet", "cidr", "macaddr", "macaddr8", "tsvector", "tsquery", "xml", "bit", "varbit",
                     "ltree", "lquery", "point", "line", "lseg", "box", "path", "polygon", "circle"})
POSTGREST_VERSION = "12"

_HELPERS = """
type DatabaseWithoutInternals = Omit<Database, "__InternalSupabase">

type DefaultSchema = DatabaseWithoutInternals[Extract<keyof Database, "public">]

type SchemaName = keyof DatabaseWithoutInternals

export type Tables<
  NameOrSchema extends keyof (DefaultSchema["Tables"] & DefaultSchema["Views"]) | { schema: SchemaName },
  Name extends NameOrSchema extends { schema: SchemaName }
    ? keyof (DatabaseWithoutInternals[NameOrSchema["schema"]]["Tables"] &
        DatabaseWithoutInternals[NameOrSchema["schema"]]["Views"])
    : never = never,
> = NameOrSchema extends { schema: SchemaName }
  ? (DatabaseWithoutInternals[NameOrSchema["schema"]]["Tables"] &
      DatabaseWithoutInternals[NameOrSchema["schema"]]["Views"])[Name] extends { Row: infer R }
    ? R
    : never
  : NameOrSchema extends keyof (DefaultSchema["Tables"] & DefaultSchema["Views"])
    ? (DefaultSchema["Tables"] & DefaultSchema["Views"])[NameOrSchema] extends { Row: infer R }
      ? R
      : never
    : never

export type TablesInsert<
  NameOrSchema extends keyof DefaultSchema["Tables"] | { schema: SchemaName },
  Name extends NameOrSchema extends { schema: SchemaName }
    ? keyof DatabaseWithoutInternals[NameOrSchema["schema"]]["Tables"]
    : never = never,
> = NameOrSchema extends { schema: SchemaName }
  ? DatabaseWithoutInternals[NameOrSchema["schema"]]["Tables"][Name] extends { Insert: infer I }
    ? I
    : never
  : NameOrSchema extends keyof DefaultSchema["Tables"]
    ? DefaultSchema["Tables"][NameOrSchema] extends { Insert: infer I }
      ? I
      : never
    : never

export type TablesUpdate<
  NameOrSchema extends keyof DefaultSchema["Tables"] | { schema: SchemaName },
  Name extends NameOrSchema extends { schema: SchemaName }
    ? keyof DatabaseWithoutInternals[NameOrSchema["schema"]]["Tables"]
    : never = never,
> = NameOrSchema extends { schema: SchemaName }
  ? DatabaseWithoutInternals[NameOrSchema["schema"]]["Tables"][Name] extends { Update: infer U }
    ? U
    : never
  : NameOrSchema extends keyof DefaultSchema["Tables"]
    ? DefaultSchema["Tables"][NameOrSchema] extends { Update: infer U }
      ? U
      : never
    : never

export type Enums<
  NameOrSchema extends keyof DefaultSchema["Enums"] | { schema: SchemaName },
  Name extends NameOrSchema extends { schema: SchemaName }
    ? keyof DatabaseWithoutInternals[NameOrSchema["schema"]]["Enums"]
    : never = never,
> = NameOrSchema extends { schema: SchemaName }
  ? DatabaseWithoutInternals[NameOrSchema["schema"]]["Enums"][Name]
  : NameOrSchema extends keyof DefaultSchema["Enums"]
    ? DefaultSchema["Enums"][NameOrSchema]
    : never

export type CompositeTypes<
  NameOrSchema extends keyof DefaultSchema["CompositeTypes"] | { schema: SchemaName },
  Name extends NameOrSchema extends { schema: SchemaName }
    ? keyof DatabaseWithoutInternals[NameOrSchema["schema"]]["CompositeTypes"]
    : never = never,
> = NameOrSchema extends { schema: SchemaName }
  ? DatabaseWithoutInternals[NameOrSchema["schema"]]["CompositeTypes"][Name]
  : NameOrSchema extends keyof DefaultSchema["CompositeTypes"]
    ? DefaultSchema["CompositeTypes"][NameOrSchema]
    : never
"""


_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")


def _key(name: str) -> str:
    """A property name: bare when it is an identifier (as Supabase's prettier-formatted output), else quoted."""
    return name if _IDENTIFIER.match(name) else _str(name)


def _str(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.depth = 0

    def line(self, text: str = "") -> None:
        self.lines.append(("  " * self.depth + text) if text else "")

    def open(self, text: str) -> None:
        self.line(text)
        self.depth += 1

    def close(self, text: str = "}") -> None:
        self.depth -= 1
        self.line(text)

    def members(self, members: Iterable[str], empty: str = "[_ in never]: never") -> None:
        items = list(members)
        for m in items or [empty]:
            self.line(m)


class TypeScript:
    """Renders one `Catalog`."""

    def __init__(self, catalog: Catalog) -> None:
        self.cat = catalog
        self.schemas = set(catalog.schemas)
        self.relation_by_oid = {r["oid"]: r for r in catalog.relations}
        self.relation_by_rowtype = {r["rowtype"]: r for r in catalog.relations}

    # -- types ------------------------------------------------------------------------------------------
    def ts(self, oid: int, depth: int = 0) -> str:
        t = self.cat.types.get(oid)
        if t is None or depth > 8:
            return "unknown"
        name, kind = t["name"], t["kind"]
        if t["category"] == "A" and t["elem"]:
            inner = self.ts(t["elem"], depth + 1)
            return f"({inner})[]" if " " in inner else f"{inner}[]"
        if kind == "d":
            return self.ts(t["base"], depth + 1)
        if kind == "e":
            if t["schema"] in self.schemas:
                return f'Database[{_str(t["schema"])}]["Enums"][{_str(name)}]'
            return " | ".join(_str(label) for label in t["labels"]) or "string"
        if kind == "c":
            rel = self.relation_by_rowtype.get(oid)
            if rel is not None:
                group = "Views" if rel["kind"] in ("v", "m") else "Tables"
                return f'Database[{_str(rel["schema"])}][{_str(group)}][{_str(rel["name"])}]["Row"]'
            if t["rel_kind"] == "c" and t["schema"] in self.schemas:
                return f'Database[{_str(t["schema"])}]["CompositeTypes"][{_str(name)}]'
            return "unknown"
        if kind == "r" or t["category"] == "R":
            return "string"  # ranges travel as their text form ("[1,5)")
        if name == "bool":
            return "boolean"
        if name in NUMBERS:
            return "number"
        if name in STRINGS or t["category"] in ("S", "D"):
            return "string"
        if name in ("json", "jsonb"):
            return "Json"
        if name == "void":
            return "undefined"
        if name == "record":
            return "Record<string, unknown>"
        return "unknown"

    def _nullable(self, column: dict[str, Any]) -> str:
        return self.ts(column["type"]) + (" | null" if column["nullable"] else "")

    # -- relations --------------------------------------------------------------------------------------
    def _row(self, w: _Writer, rel: dict[str, Any]) -> None:
        w.open("Row: {")
        w.members(f"{_key(c['name'])}: {self._nullable(c)}" for c in self.cat.columns.get(rel["oid"], []))
        w.close()

    def _table_writes(self, w: _Writer, rel: dict[str, Any], label: str) -> None:
        w.open(f"{label}: {{")
        for c in self.cat.columns.get(rel["oid"], []):
            if c["identity"] == "a" or c["generated"]:
                w.line(f"{_key(c['name'])}?: never")  # the database sets it; writing it is an error
                continue
            optional = label == "Update" or c["nullable"] or c["has_default"] or c["identity"] == "d"
            w.line(f"{_key(c['name'])}{'?' if optional else ''}: {self._nullable(c)}")
        w.close()

    def _view_writes(self, w: _Writer, rel: dict[str, Any], label: str) -> None:
        w.open(f"{label}: {{")
        for c in self.cat.columns.get(rel["oid"], []):
            if not c["updatable"]:
                w.line(f"{_key(c['name'])}?: never")
            else:
                w.line(f"{_key(c['name'])}?: {self.ts(c['type'])} | null")
        w.close()

    def _foreign_keys(self, rel: dict[str, Any]) -> list[dict[str, Any]]:
        """A table's own foreign keys; for a view, those of the tables it reads whose columns it shows under
        the same names (the view inherits the relationship, as PostgREST and Supabase's generator see it)."""
        if rel["kind"] not in ("v", "m"):
            return [fk for fk in self.cat.foreign_keys if fk["rel"] == rel["oid"]]
        shown = {c["name"] for c in self.cat.columns.get(rel["oid"], [])}
        bases = self.cat.view_bases.get(rel["oid"], set())
        return [fk for fk in self.cat.foreign_keys if fk["rel"] in bases and set(fk["columns"]) <= shown]

    def _relationships(self, w: _Writer, rel: dict[str, Any]) -> None:
        keys = sorted(self._foreign_keys(rel),
                      key=lambda fk: (fk["name"], self.relation_by_oid.get(fk["ref_rel"], {}).get("name", "")))
        if not keys:
            w.line("Relationships: []")
            return
        w.open("Relationships: [")
        for fk in keys:
            target = self.relation_by_oid.get(fk["ref_rel"])
            if target is None:
                continue
            w.open("{")
            w.line(f"foreignKeyName: {_str(fk['name'])}")
            w.line(f"columns: {json.dumps(list(fk['columns']), ensure_ascii=False)}")
            w.line(f"isOneToOne: {'true' if fk['one_to_one'] else 'false'}")
            w.line(f"referencedRelation: {_str(target['name'])}")
            w.line(f"referencedColumns: {json.dumps(list(fk['ref_columns']), ensure_ascii=False)}")
            w.close("},")
        w.close("]")

    # -- functions --------------------------------------------------------------------------------------
    @staticmethod
    def _in_args(fn: dict[str, Any]) -> list[tuple[str, int, bool]]:
        """(name, type, has default) of the arguments a caller passes (IN, INOUT, VARIADIC)."""
        args = [(n or "", t) for n, t, m in zip(fn["arg_names"], fn["arg_types"], fn["arg_modes"], strict=False)
                if m in ("i", "b", "v")]
        first_default = len(args) - fn["defaults"]
        return [(n, t, i >= first_default) for i, (n, t) in enumerate(args)]

    def _callable(self, fn: dict[str, Any]) -> bool:
        """As Supabase's generator: every argument named, or a single unnamed one (PostgREST's rules)."""
        args = self._in_args(fn)
        return all(n for n, _, _ in args) or len(args) == 1

    def _args(self, fn: dict[str, Any]) -> str:
        args = self._in_args(fn)
        if not args:
            return "Record<PropertyKey, never>"
        return "{ " + "; ".join(f"{_key(n)}{'?' if d else ''}: {self.ts(t)}" for n, t, d in args) + " }"

    def _returns(self, fn: dict[str, Any]) -> str:
        out = [(n, t) for n, t, m in zip(fn["arg_names"], fn["arg_types"], fn["arg_modes"], strict=False)
               if m == "t"]
        # `returns table (…)` as an object (typed like Supabase's generator: no `| null`); a relation's row
        # type by reference to its Row
        shape = ("{ " + "; ".join(f"{_key(n)}: {self.ts(t)}" for n, t in out) + " }") if out \
            else self.ts(fn["returns"])
        if fn["setof"]:
            return f"({shape})[]" if "|" in shape and not shape.startswith("{") else f"{shape}[]"
        return shape

    def _functions(self, w: _Writer, schema: str) -> None:
        groups: dict[str, list[dict[str, Any]]] = {}
        for fn in self.cat.functions:
            if fn["schema"] == schema and self._callable(fn):
                groups.setdefault(fn["name"], []).append(fn)
        w.open("Functions: {")
        if not groups:
            w.line("[_ in never]: never")
        for name in sorted(groups):
            fns = groups[name]
            w.open(f"{_key(name)}: {{")
            w.line("Args: " + " | ".join(dict.fromkeys(self._args(fn) for fn in fns)))
            w.line("Returns: " + self._returns(fns[0]))  # overloads return the same type, as PostgREST assumes
            rel = self.relation_by_rowtype.get(fns[0]["returns"])
            if rel is not None and rel["schema"] == schema:
                # rows of a relation: supabase-js types embedding and filters on the call's result with it
                w.open("SetofOptions: {")
                w.line('from: "*"')
                w.line(f"to: {_str(rel['name'])}")
                w.line(f"isOneToOne: {'false' if fns[0]['setof'] else 'true'}")
                w.line(f"isSetofReturn: {'true' if fns[0]['setof'] else 'false'}")
                w.close()
            w.close()
        w.close()

    # -- the whole file ---------------------------------------------------------------------------------
    def _enums(self, schema: str) -> list[dict[str, Any]]:
        return sorted((t for t in self.cat.types.values() if t["schema"] == schema and t["kind"] == "e"),
                      key=lambda t: t["name"])

    def _composites(self, schema: str) -> list[dict[str, Any]]:
        return sorted((t for t in self.cat.types.values() if t["schema"] == schema and t["rel_kind"] == "c"),
                      key=lambda t: t["name"])

    def _schema(self, w: _Writer, schema: str) -> None:
        w.open(f"{_key(schema)}: {{")
        tables = [r for r in self.cat.relations if r["schema"] == schema and r["kind"] in ("r", "p", "f")]
        views = [r for r in self.cat.relations if r["schema"] == schema and r["kind"] in ("v", "m")]
        w.open("Tables: {")
        if not tables:
            w.line("[_ in never]: never")
        for rel in tables:
            w.open(f"{_key(rel['name'])}: {{")
            self._row(w, rel)
            self._table_writes(w, rel, "Insert")
            self._table_writes(w, rel, "Update")
            self._relationships(w, rel)
            w.close()
        w.close()
        w.open("Views: {")
        if not views:
            w.line("[_ in never]: never")
        for rel in views:
            w.open(f"{_key(rel['name'])}: {{")
            self._row(w, rel)
            if rel["updatable"]:
                self._view_writes(w, rel, "Insert")
                self._view_writes(w, rel, "Update")
            self._relationships(w, rel)
            w.close()
        w.close()
        self._functions(w, schema)
        w.open("Enums: {")
        w.members(f"{_key(t['name'])}: " + (" | ".join(_str(label) for label in t["labels"]) or "never")
                  for t in self._enums(schema))
        w.close()
        w.open("CompositeTypes: {")
        composites = self._composites(schema)
        if not composites:
            w.line("[_ in never]: never")
        for t in composites:
            w.open(f"{_key(t['name'])}: {{")
            w.members((f"{_key(c['name'])}: {self.ts(c['type'])} | null" for c in self.cat.columns.get(t["rel"], [])),
                      empty="")
            w.close()
        w.close()
        w.close()

    def render(self) -> str:
        w = _Writer()
        w.line("export type Json =")
        for alt in ("string", "number", "boolean", "null", "{ [key: string]: Json | undefined }", "Json[]"):
            w.line(f"  | {alt}")
        w.line()
        w.open("export type Database = {")
        w.line("// Tells supabase-js which PostgREST features to type (as `supabase gen types` does)")
        w.open("__InternalSupabase: {")
        w.line(f'PostgrestVersion: "{POSTGREST_VERSION}"')
        w.close()
        for schema in sorted(self.schemas):
            self._schema(w, schema)
        w.close()
        text = "\n".join(w.lines) + "\n" + _HELPERS
        return text + "\n" + self._constants()

    def _constants(self) -> str:
        w = _Writer()
        w.open("export const Constants = {")
        for schema in sorted(self.schemas):
            w.open(f"{_key(schema)}: {{")
            enums = self._enums(schema)
            if not enums:
                w.line("Enums: {},")
            else:
                w.open("Enums: {")
                for t in enums:
                    w.line(f"{_key(t['name'])}: {json.dumps(list(t['labels']), ensure_ascii=False)},")
                w.close("},")
            w.close("},")
        w.close("} as const")
        return "\n".join(w.lines) + "\n"


def render(catalog: Catalog) -> str:
    return TypeScript(catalog).render()
