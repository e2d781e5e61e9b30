"""The manual's ENVIRONMENT section is generated from the knob table, and every LOOOP_*
variable the code reads or sets is in the manual."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from looop.home.config import KNOBS
from tests.clocks import FixedClock
from tests.helpers import clean_env, run_cli

SRC = Path(__file__).resolve().parents[3] / "src" / "looop"
# click's shell-completion switch (`_LOOOP_COMPLETE`): click's own, documented by `completion`
NOT_LOOOP_SETTINGS = {"LOOOP_COMPLETE"}


def _manual(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> str:
    env = clean_env(tmp_path, tmp_path / "data")
    code, out, err = run_cli(capsys, "help", env=env, clock=FixedClock())
    assert code == 0, err
    return out


def test_every_knob_is_in_the_manual_with_its_default_and_range(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    lines = _manual(capsys, tmp_path).splitlines()
    for knob in KNOBS.values():
        row = [ln for ln in lines if ln.strip().startswith(knob.env + " ")]
        assert len(row) == 1, knob.env
        if knob.kind != "bool":
            assert f"..{int(knob.maximum)}" in row[0], row[0]
        assert knob.describe in row[0]


def test_every_looop_variable_in_the_code_is_in_the_manual(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    used = set()
    for path in SRC.rglob("*.py"):
        used |= set(re.findall(r"LOOOP_[A-Z][A-Z_]*[A-Z]", path.read_text()))
    assert "{{knobs}}" not in _manual(capsys, tmp_path)
    documented = set(re.findall(r"LOOOP_[A-Z][A-Z_]*[A-Z]", _manual(capsys, tmp_path)))
    assert used - documented - NOT_LOOOP_SETTINGS == set()
