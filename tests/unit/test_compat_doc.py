"""docs/COMPAT.md is a tested table: every row that calls a v1.0 spelling "same" names the test
that runs it (`tests/…py::test_name`), and each named test exists; a "different" row says why.
So the doc cannot drift from the suite."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
REF = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")


def _rows() -> list[tuple[int, str, str]]:
    """(line number, the v1.0 cell, the verdict cell) of every table row but headers."""
    rows = []
    for n, line in enumerate((ROOT / "docs" / "COMPAT.md").read_text().splitlines(), 1):
        if not line.startswith("| ") or line.startswith(("| v1.0 |", "| v1.0 field |")):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        rows.append((n, cells[0], cells[-1]))
    return rows


def test_the_table_has_rows() -> None:
    assert len(_rows()) > 40


def test_every_same_row_names_a_test_that_exists() -> None:
    missing: list[str] = []
    for n, v1, verdict in _rows():
        if not verdict.startswith("same"):
            continue
        refs = REF.findall(verdict)
        if not refs:
            missing.append(f"line {n} ({v1[:40]}): names no test")
        for path, name in refs:
            f = ROOT / path
            if not f.is_file() or not re.search(rf"^def {name}\(", f.read_text(), re.M):
                missing.append(f"line {n}: {path}::{name} does not exist")
    assert missing == []


def test_every_different_row_says_why() -> None:
    for n, v1, verdict in _rows():
        if verdict.startswith("**different**") or verdict.startswith("different"):
            assert ":" in verdict and len(verdict.split(":", 1)[1].strip()) > 20, (n, v1)


def _verdict(v1_starts: str) -> str:
    found = [verdict for _, v1, verdict in _rows() if v1.startswith(v1_starts)]
    assert len(found) == 1, (v1_starts, found)
    return found[0]


V1_LIST_COLUMNS = ("ID", "HEALTH", "STATE", "IDLE", "UP", "ASK", "VERIFY")


def test_where_the_behaviour_differs_the_row_says_different() -> None:
    """Each row below is checked against what the code does, not against itself: where it
    is not v1.0's (the columns shown, the watch's order, flap damping, the default budget),
    the row says **different**, with its reason."""
    from looop.home.knobs import KNOBS
    from looop.tui.app import COLUMNS
    from looop.views.fleet import fleet_table

    row = {"id": "w1", "health": "busy", "label": "running", "idle_s": 1, "up_s": 2}
    wide = {**row, "verify": None, "sandboxed": True, "host": "h", "branch": "b"}
    head = tuple(fleet_table([wide]).splitlines()[0].split())
    assert head[: len(V1_LIST_COLUMNS)] == V1_LIST_COLUMNS and head != V1_LIST_COLUMNS
    assert _verdict("`worker list\\|ls").startswith("**different**")

    assert tuple(label for label, _ in COLUMNS) != V1_LIST_COLUMNS
    assert _verdict("`watch`'s screen").startswith("**different**")

    assert KNOBS["flap_high"].default > 0  # damping on by default: changes stop waking
    assert _verdict("`LOOOP_FLAP_STREAK`").startswith("**different**")

    assert KNOBS["max_daily_usd"].default == 10.0  # v1.0 had no spending limit
    budget = _verdict("the cost ledger and daily budget were removed")
    assert budget.startswith("**different**") and "$10" in _row_text(budget)


def _row_text(verdict: str) -> str:
    text = (ROOT / "docs" / "COMPAT.md").read_text()
    return next(line for line in text.splitlines() if line.endswith(verdict + " |"))
