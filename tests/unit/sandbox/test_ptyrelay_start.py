"""When the pty relay says a sandboxed `bash -c` worker runs its program: posix_spawn hands
back the child a moment before the kernel renames it, so the relay's own name seen first is
the child not yet exec'd, never the program (a missing program would print ✓)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from looop.sandbox import ptyrelay
from looop.sandbox.ptyrelay import Relay
from looop.sessions import oscalls


def _watch(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, names: list[str | None], code: int | None
) -> tuple[str | None, int]:
    """(the note, how many names were looked at) for a child seen as `names` one look after
    another; once they are used up it ends with `code` (None: it lives on)."""
    looks = iter(names)
    relay = object.__new__(Relay)
    relay.argv, relay.pid, relay.status = ["bash", "-c", "agent x"], 3, None
    relay.note = str(tmp_path / "note")
    seen = []

    def program_of(pid: int) -> str | None:
        seen.append(pid)
        return next(looks, "bash")

    def reap(self: Relay) -> None:
        if len(seen) >= len(names) and code is not None:
            self.status = code << 8

    monkeypatch.setattr(ptyrelay, "_status", lambda path: ("python", ["9", "2"]))
    monkeypatch.setattr(ptyrelay, "_program_of", program_of)
    monkeypatch.setattr(Relay, "pump", lambda self, timeout, reading=True: True)
    monkeypatch.setattr(Relay, "reap", reap)
    monkeypatch.setattr(ptyrelay, "START_S", 3600.0)
    relay.watch_start()
    note = tmp_path / "note"
    return (note.read_text().strip() if note.exists() else None), len(seen)


def test_a_missing_program_behind_bash_never_reads_as_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    note, _ = _watch(monkeypatch, tmp_path, ["python", "python", "bash", "bash"], 127)
    assert note is None  # the relay's end writes `exit 127` later


def test_the_program_bash_became_reads_as_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    note, looks = _watch(monkeypatch, tmp_path, ["python", "bash", "claude"], None)
    assert (note, looks) == ("run", 3)


def test_a_program_named_like_the_relay_counts_once_bash_was_seen(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    note, looks = _watch(monkeypatch, tmp_path, ["python", "bash", "python"], None)
    assert (note, looks) == ("run", 3)


def test_a_program_exec_d_before_any_look_reads_as_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    note, looks = _watch(monkeypatch, tmp_path, ["claude"], None)
    assert (note, looks) == ("run", 1)


def test_the_relay_resets_the_signals_the_supervisor_resets() -> None:
    """A worker starts with the same signals at their default action whether the supervisor
    spawns it or the relay inside its box does (the relay keeps its own copy of the list)."""
    assert {s.name for s in oscalls._RESET_SIGNALS} == {
        n for n in ptyrelay._RESET if hasattr(signal, n)
    }
