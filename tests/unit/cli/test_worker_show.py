"""`looop worker show ID`: one worker's `ls -a` row, every field, as text or JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from looop.verbs.console import run as main

pytestmark = pytest.mark.unit


def _run(tmp_path: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    env = {"LOOOP_DATA_DIR": str(tmp_path / "data"), "HOME": str(tmp_path), "PATH": "/usr/bin"}
    code: object = 0
    try:
        main(list(argv), env)
    except SystemExit as e:
        code = e.code
    got = capsys.readouterr()
    return int(code or 0), got.out, got.err


def test_worker_show_prints_the_row_ls_has(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(tmp_path, capsys, "ls", "-a", "--json")
    (row,) = [r for r in json.loads(out) if r["id"] == "pulse"]
    code, out, err = _run(tmp_path, capsys, "worker", "show", "pulse", "--json")
    assert code == 0 and json.loads(out) == row, err
    code, out, _ = _run(tmp_path, capsys, "worker", "show", "pulse")
    assert code == 0 and "state:" in out and "stopped" in out and "null" not in out


def test_worker_show_of_an_unknown_id_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(tmp_path, capsys, "worker", "show", "nope")
    assert code == 1 and out == "" and err == "looop: no worker nope — `looop ls -a` lists them\n"
