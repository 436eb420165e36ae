"""Packaging: what the code imports is declared, package data exists, and the two locks split runtime from tests."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).parents[2]
#: imports that are optional (guarded by `except ImportError`) and come with a declared dependency's extra
OPTIONAL = {"uvloop"}  # uvicorn[standard]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.split(r"[\s\[<>=!~;]", requirement.strip(), maxsplit=1)[0]).lower()


def _lock(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "-r")):
            assert "==" in line, f"{path.name}: not pinned: {line}"
            pins[_name(line)] = line
    return pins


def test_every_third_party_import_is_a_declared_dependency() -> None:
    declared = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    to_dists = packages_distributions()
    missing = set()
    for path in (ROOT / "src" / "madbase").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else []
            for name in names:
                top = name.split(".")[0]
                if top == "madbase" or top in sys.stdlib_module_names or top in OPTIONAL:
                    continue
                dists = {_name(d) for d in to_dists.get(top, [top])}
                if not dists & declared:
                    missing.add(f"{top} ({path.relative_to(ROOT)})")
    assert not missing, f"imported but not in [project].dependencies: {sorted(missing)}"


def test_package_data_exists() -> None:
    base = ROOT / "src" / "madbase"
    for pattern in PYPROJECT["tool"]["setuptools"]["package-data"]["madbase"]:
        assert any(p.is_file() for p in base.glob(pattern)), f"package-data {pattern!r} matches no file"


def test_runtime_lock_has_the_runtime_only_and_dev_lock_the_rest() -> None:
    runtime = _lock(ROOT / "requirements.lock")
    dev_text = (ROOT / "requirements-dev.lock").read_text()
    dev = _lock(ROOT / "requirements-dev.lock")
    assert "-r requirements.lock" in dev_text.splitlines()
    for requirement in PYPROJECT["project"]["dependencies"]:
        assert _name(requirement) in runtime, f"runtime dependency {requirement} missing from requirements.lock"
    for requirement in PYPROJECT["project"]["optional-dependencies"]["dev"]:
        name = _name(requirement)
        assert name in dev or name in runtime, f"dev dependency {requirement} missing from requirements-dev.lock"
    for test_only in ("pytest", "moto", "mypy", "ruff", "hypothesis", "supabase", "aiosmtpd", "boto3"):
        assert test_only not in runtime, f"{test_only} is not a runtime dependency"
    assert not set(runtime) & set(dev), "a package is pinned in both locks"
