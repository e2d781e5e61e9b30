"""store.Follower: the tail -f both `looop journal -f` and the web's live events read with."""

from __future__ import annotations

import os
from pathlib import Path

from looop.home import store


def test_whole_lines_only_and_a_half_line_waits(tmp_path: Path) -> None:
    p = tmp_path / "journal.md"
    f = store.Follower(p)
    assert f.lines() == []  # no file yet
    p.write_bytes(b"one\n\ntw")
    assert f.lines() == ["one"]
    with p.open("ab") as out:
        out.write(b"o\nthree \xff\n")
    assert f.lines() == ["two", "three \ufffd"]
    assert f.lines() == []


def test_skip_to_end_then_truncation_and_replacement_restart(tmp_path: Path) -> None:
    p = tmp_path / "events.jsonl"
    p.write_text("old\n")
    f = store.Follower(p)
    f.skip_to_end()
    assert f.lines() == []
    with p.open("a") as out:
        out.write("new\n")
    assert f.lines() == ["new"]
    p.write_text("x\n")  # truncated: shorter than what was read
    assert f.lines() == ["x"]
    fresh = tmp_path / "rotated"
    fresh.write_text("a much longer first line\n")
    os.replace(fresh, p)  # another inode, longer than the offset
    assert f.lines() == ["a much longer first line"]


def test_start_and_read_max(tmp_path: Path) -> None:
    p = tmp_path / "j"
    p.write_text("seen\nfirst\nsecond\n")
    st = p.stat()
    f = store.Follower(p, ((st.st_dev, st.st_ino), 5), read_max=8)
    assert f.lines() == ["first"]
    assert f.lines() == ["second"]
    d = tmp_path / "d"
    d.mkdir()
    assert store.Follower(d).lines() == []  # not a regular file: nothing, no raise
