"""`madbase gen types typescript`: the generated `Database` type of a real schema type-checks with `tsc`
against the pinned supabase-js (tests/js), and typed queries refuse misuse (`@ts-expect-error` lines)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.cli.conftest import Cli
from tests.support.servers import MadbaseProcess

HERE = Path(__file__).parent / "typecheck"
JS = Path(__file__).parents[1] / "js"
TSC = JS / "node_modules" / "typescript" / "bin" / "tsc"


@pytest.fixture(scope="module")
def schema(cli_server: MadbaseProcess) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(cli_server.db_url)
        try:
            await conn.execute((HERE / "schema.sql").read_text())
        finally:
            await conn.close()
    asyncio.run(run())


def test_generated_types_typecheck_with_supabase_js(cli: Cli, schema: None, tmp_path: Path) -> None:
    if not TSC.exists() or shutil.which("node") is None:
        pytest.skip("tests/js is not installed (npm ci in tests/js)")
    made = cli("gen", "types", "typescript", "--schema", "public", "--schema", "tg")
    assert made.returncode == 0, made.stderr
    text = made.stdout
    assert text.startswith("export type Json =")
    assert "    authors: {" in text and "Relationships: [" in text and '"odd name": boolean | null' in text
    assert 'foreignKeyName: "books_author_id_fkey"' in text
    assert 'mood: "happy" | "sad" | "it\'s \\"odd\\""' in text
    assert "Returns: Database[\"tg\"][\"Tables\"][\"authors\"][\"Row\"][]" in text  # setof a table
    assert "touch:" not in text  # trigger functions are not callable through the API
    assert "nothing:" not in text  # an unnamed argument beside others: not callable by name
    folder = tmp_path / "ts"
    folder.mkdir()
    (folder / "database.types.ts").write_text(text)
    shutil.copy(HERE / "check.ts", folder / "check.ts")
    (folder / "node_modules").symlink_to(JS / "node_modules")
    (folder / "tsconfig.json").write_text(json.dumps({
        "compilerOptions": {"strict": True, "noEmit": True, "target": "ES2022", "module": "ESNext",
                            "moduleResolution": "Bundler", "skipLibCheck": True, "lib": ["ES2022", "DOM"],
                            "noUnusedLocals": False},
        "files": ["check.ts", "database.types.ts"]}))
    checked = subprocess.run(["node", str(TSC), "-p", str(folder / "tsconfig.json")], capture_output=True,
                             text=True, timeout=300)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_types_route_shape_and_errors(cli_server: MadbaseProcess, schema: None) -> None:
    base = f"{cli_server.url}/admin/v1/projects/{cli_server.project_ref}/types/typescript"
    answer = httpx.get(base, params={"included_schemas": "tg,no_such_schema"}, headers=cli_server.admin_headers())
    assert answer.status_code == 200
    types = answer.json()["types"]
    assert "  tg: {" in types and "no_such_schema" not in types
    assert httpx.get(base, params={"included_schemas": ","}, headers=cli_server.admin_headers()).status_code == 400
    assert httpx.get(base).status_code == 401
