"""A child's end note (the sandbox's pty relay writes it from inside) turns a wrapper's 128+N
into signal N only where both agree; anything else it says, or is, is ignored."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from looop.sessions.lifecycle import signal_in_note


@pytest.mark.parametrize(
    ("text", "code", "want"),
    [
        ("signal 15\n", 143, 15),
        ("signal 9", 137, 9),
        ("signal 15\n", 130, None),  # the code says another signal
        ("signal 2\n", 0, None),  # a clean exit stays one, whatever the note says
        ("exit 130\n", 130, None),  # a program that exited 130
        ("signal 15 and more", 143, None),
        ("", 143, None),
        ("signal 200", 328, None),  # past any signal
    ],
)
def test_the_note_is_believed_only_where_the_code_agrees(
    tmp_path: Path, text: str, code: int, want: int | None
) -> None:
    note = tmp_path / "note"
    note.write_text(text)
    assert signal_in_note(str(note), code) == want


def test_no_note_a_link_or_a_fifo_says_nothing(tmp_path: Path) -> None:
    assert signal_in_note(str(tmp_path / "absent"), 143) is None
    real = tmp_path / "real"
    real.write_text("signal 15\n")
    (tmp_path / "link").symlink_to(real)
    assert signal_in_note(str(tmp_path / "link"), 143) is None
    os.mkfifo(tmp_path / "fifo")  # a plain open would block here forever
    assert signal_in_note(str(tmp_path / "fifo"), 143) is None
    assert signal_in_note(str(real), None) is None  # ended by a signal of its own already
