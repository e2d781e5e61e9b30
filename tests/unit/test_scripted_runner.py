"""The demo's scripted runner counts its calls in <script>.pos, which tests poll while a pulse
runs it: the count must never be read half-written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from looop.demo.runner import _next_step, main

pytestmark = pytest.mark.unit


def test_each_call_is_counted_by_a_new_file_put_in_place(tmp_path: Path) -> None:
    # Rewritten in place (truncate, then write), a poller between the two read '' and failed
    # (int('') in test_pulse_clock, found under load); put in place by a rename, a reader sees
    # the old count or the new one.
    script = tmp_path / "script.json"
    script.write_text(json.dumps([{"decision": {"action": "noop"}}, {"no_decision": True}]))
    pos = tmp_path / "script.json.pos"
    _next_step(script)
    for n in (2, 3):
        with pos.open() as before:  # a reader that opened the count just before the call
            _next_step(script)
            assert before.read() == str(n - 1), "the count was rewritten under its reader"
        assert pos.read_text() == str(n)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("full", ["decision", "count"])
def test_a_full_disk_ends_the_runner_in_one_line_without_a_trace(
    tmp_path: Path, full: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The pulse keeps what its runner prints in the run's archive; a soak filling the disk
    # mid-beat found a traceback there, where an agent CLI would have said one line.
    script = tmp_path / "script.json"
    script.write_text(json.dumps([{"decision": {"action": "noop", "reason": "x"}}]))
    prompt = tmp_path / "prompt.md"
    prompt.write_text("the prompt")
    monkeypatch.setenv("LOOOP_DECISION", "/dev/full" if full == "decision" else str(tmp_path / "d"))
    if full == "count":
        (tmp_path / "script.json.pos").mkdir()  # the count cannot be put in place
    assert main(["--script", str(script), str(prompt)]) == 1
    said = capsys.readouterr().err.strip().splitlines()
    assert len(said) == 1 and "no decision written" in said[0], said
    assert not (tmp_path / "d").exists()
