"""The dashboard's pure UI logic (SQL tokens and selection, error positions, quoting, policy templates,
formatting, rights, chart paths) unit-tested in node (`node --test tests/dashboard/unit/`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parent / "unit"


def test_ui_logic_in_node() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is required for the dashboard's unit tests")
    done = subprocess.run([node, "--test", str(UNIT)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "# fail 0" in done.stdout
