"""One home is one home, as real processes: the data dir reached through a symlink or a bind
mount is the same home for the verbs that find its workers — a worker started under one
spelling is stopped by `looop down` under another, and `looop ls` sees it."""

from __future__ import annotations

import os
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from looop.core.context import Ctx
from looop.sessions.state import get_session
from tests.helpers import clean_env

pytestmark = pytest.mark.timeout(120)


def _looop(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "looop", *args],
        env=clean_env(data.parent, data, LOOOP_INTERVAL="3600"),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _exits(pid: int, secs: float) -> bool:
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], secs)[0])
    finally:
        os.close(fd)


@pytest.fixture(params=["symlink", "bind mount"])
def alias(request: pytest.FixtureRequest, ctx: Ctx, tmp_path: Path) -> Iterator[Path]:
    """The data dir under a second name."""
    other = tmp_path / "alias"
    if request.param == "symlink":
        other.symlink_to(ctx.paths.data)
        yield other
        return
    if os.geteuid() != 0:
        pytest.skip("a bind mount needs root")
    other.mkdir()
    made = subprocess.run(
        ["mount", "--bind", str(ctx.paths.data), str(other)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if made.returncode != 0:
        pytest.skip(f"mount --bind is refused here: {made.stderr.strip()}")
    try:
        yield other
    finally:
        subprocess.run(["umount", "-l", str(other)], capture_output=True, timeout=30, check=False)


@pytest.mark.parametrize("started", ["alias", "own"])
def test_down_under_one_spelling_stops_a_worker_started_under_another(
    ctx: Ctx, alias: Path, started: str
) -> None:
    first, then = (alias, ctx.paths.data) if started == "alias" else (ctx.paths.data, alias)
    ctx.paths.data.mkdir(parents=True, exist_ok=True)
    try:
        r = _looop(first, "worker", "start", "w1", "x", "--command", "sleep 600 # {{prompt_file}}")
        assert r.returncode == 0, r.stderr
        child = get_session(ctx.paths.data, "w1").child_pid
        assert isinstance(child, int)
        shown = _looop(then, "ls")
        assert "w1" in shown.stdout and "running" in shown.stdout, shown.stdout + shown.stderr
        r = _looop(then, "down")
        assert r.returncode == 0, r.stderr
        assert _exits(child, 15), f"the worker outlived `down`: {r.stdout}{r.stderr}"
    finally:
        _looop(first, "down")
        _looop(ctx.paths.data, "down")
