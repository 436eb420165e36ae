"""The architecture's import rules, kept true by a test: services never import each other, and the shared core
imports no service. Imports are read from the source with `ast`, so lazy imports inside functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "madbase"
SERVICES = ("auth", "rest", "storage", "realtime", "functions", "admin")


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            # a relative import climbing out of its package is as much a cross-package import
            parts = path.relative_to(PACKAGE.parent).with_suffix("").parts[: -node.level]
            found.add(".".join((*parts, node.module or "")).rstrip("."))
    return found


def _owner(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "madbase" and parts[1] in SERVICES else None


def _violations(package: str, allowed: set[str | None]) -> list[str]:
    found = []
    for path in sorted((PACKAGE / package).rglob("*.py")):
        for module in sorted(_imported_modules(path)):
            owner = _owner(module)
            if owner is not None and owner not in allowed:
                found.append(f"{path.relative_to(PACKAGE)} imports {module}")
    return found


def test_services_never_import_each_other() -> None:
    problems = [v for service in SERVICES if (PACKAGE / service).is_dir()
                for v in _violations(service, {service})]
    assert problems == []


def test_core_imports_no_service() -> None:
    assert _violations("core", set()) == []
    for module in ("config.py", "wsprotocol.py", "statefile.py"):
        path = PACKAGE / module
        if path.exists():
            assert [m for m in _imported_modules(path) if _owner(m)] == [], module


def test_the_rule_checker_sees_a_violation(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import madbase.core.db\n\ndef lazy():\n    from madbase.rest import plan\n")
    assert {_owner(m) for m in _imported_modules(sample)} == {None, "rest"}
