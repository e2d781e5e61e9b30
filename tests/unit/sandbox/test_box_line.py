"""Which program a sandboxed worker's box starts first (sandbox/boxtty.box_line): the perl
waiter where it can run, the Python pty relay otherwise, and only the waiter takes looop's PTY."""

from __future__ import annotations

import os
import shlex
import stat
from pathlib import Path

import pytest

from looop.sandbox import boxtty


def _perl_in(folder: Path) -> str:
    perl = folder / "perl"
    perl.write_text("#!/bin/sh\n")
    perl.chmod(perl.stat().st_mode | stat.S_IXUSR)
    return str(folder)


@pytest.mark.skipif(os.uname().machine not in boxtty.SETSID_NR, reason="no setsid number")
def test_the_waiter_runs_where_perl_is_on_the_workers_path(tmp_path: Path) -> None:
    note = str(tmp_path / "note")
    line, takes_tty = boxtty.box_line(note, ["claude", "go"], {"PATH": _perl_in(tmp_path)})
    words = shlex.split(line)
    # a LANG the machine lacks would have perl warn on the worker's screen
    assert words[0] == "PERL_BADLANG=0"
    assert takes_tty and words[1:4] == ["exec", str(tmp_path / "perl"), boxtty.WAITER]
    assert words[-4:] == [note, "--", "claude", "go"]
    nr, _tiocsctty, flags = (int(w) for w in words[4:7])
    assert nr == boxtty.SETSID_NR[os.uname().machine]
    assert flags & os.O_NOFOLLOW and flags & os.O_CREAT  # the note: never through a link


@pytest.mark.parametrize(
    "env",
    [{"PATH": "/nonexistent"}, {"PATH": "", "LOOOP_BOX_WAITER": "relay"}, {}],
    ids=["no-perl", "asked-for-the-relay", "no-path"],
)
def test_the_relay_runs_where_the_waiter_cannot(tmp_path: Path, env: dict[str, str]) -> None:
    if env.get("LOOOP_BOX_WAITER"):
        env["PATH"] = _perl_in(tmp_path)
    line, takes_tty = boxtty.box_line(str(tmp_path / "note"), ["claude"], env)
    words = shlex.split(line)
    assert not takes_tty and boxtty.RELAY in words and words[-2:] == ["--", "claude"]


def test_a_users_own_perl_badlang_is_left_alone(tmp_path: Path) -> None:
    env = {"PATH": _perl_in(tmp_path), "PERL_BADLANG": "1"}
    line, _ = boxtty.box_line(str(tmp_path / "note"), ["claude"], env)
    assert "PERL_BADLANG" not in line or os.uname().machine not in boxtty.SETSID_NR


def test_the_last_runs_note_goes_before_a_new_start(tmp_path: Path) -> None:
    note = tmp_path / "note"
    note.write_text("exit 3\n")
    boxtty.waiter_line(str(note), ["x"], "/usr/bin/perl", 112)
    assert not note.exists()
