"""What the session host keeps per started supervisor (sessions/hostrequest.py): kept while its
session lives, let go once it ended, so a host that starts and ends workers for weeks stays
flat instead of growing by a supervisor's objects (~19 kB) per start."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from looop.home.sessionfiles import LOCK
from looop.sessions.hostrequest import KEEP_PREPARED, _let_go_ended


def _session(root: Path, sid: str) -> tuple[str, int]:
    """A session folder whose supervisor holds its lock (the returned fd) until closed."""
    sdir = root / "sessions" / sid
    sdir.mkdir(parents=True)
    fd = os.open(sdir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return str(sdir), fd


def test_ended_sessions_are_let_go_and_live_ones_kept(tmp_path: Path) -> None:
    kept: list[tuple[str, object]] = []
    live, live_fd = _session(tmp_path, "stays")
    kept.append((live, object()))
    for i in range(KEEP_PREPARED // 2):  # fewer starts than the cap: the cap alone keeps all
        sdir, fd = _session(tmp_path, f"w{i}")
        _let_go_ended(kept)
        kept.append((sdir, object()))
        os.close(fd)  # `looop kill wN`: its supervisor is gone
    _let_go_ended(kept)
    assert [s for s, _ in kept] == [live]
    os.close(live_fd)
    _let_go_ended(kept)
    assert kept == []


def test_a_session_folder_that_is_gone_is_let_go(tmp_path: Path) -> None:
    kept: list[tuple[str, object]] = [(str(tmp_path / "sessions" / "removed"), object())]
    _let_go_ended(kept)
    assert kept == []
