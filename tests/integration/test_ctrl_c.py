"""Ctrl-C during a decide, as real processes: the first says what the beat waits for and the
runner goes on; a second abandons the beat (its runner's group ends, no move, a record)."""

from __future__ import annotations

import json
import os
import select
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import pytest

from looop.core.context import Ctx
from tests.helpers import clean_env

pytestmark = pytest.mark.timeout(90)

MOVE = {"action": "run_shell", "cmd": "echo moved > moved.txt", "reason": "move"}


def _slow_decider(ctx: Ctx, tmp: Path) -> tuple[Path, Path]:
    """A runner that names its process group, then waits at a FIFO before it decides."""
    gate, pgid = tmp / "gate", tmp / "pgid"
    os.mkfifo(gate)
    decide = f'echo {shlex.quote(json.dumps(MOVE))} > "$LOOOP_DECISION"'
    script = f"ps -o pgid= $$ > {pgid}; read x < {gate}; {decide}"
    tick = f"bash -c {shlex.quote(script)}"
    obj = {"default": "slow", "runners": {"slow": {"tick": tick, "worker": "true"}}}
    ctx.paths.config.write_text(json.dumps({**obj, "max_daily_usd": 0}))
    return gate, pgid


def _await_text(stream: IO[bytes], text: str, seen: bytearray, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while text.encode() not in seen:
        left = deadline - time.monotonic()
        assert left > 0 and select.select([stream], [], [], left)[0], f"{text!r} not in {seen!r}"
        chunk = os.read(stream.fileno(), 65536)
        assert chunk, f"{text!r} not in {seen!r}"
        seen += chunk


def _group_alive(pgid: int) -> bool:
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


TICK_SAID = "looop: Ctrl-C — waiting for slow to decide; a second Ctrl-C abandons the beat"
UP_SAID = "looop: stopping — waiting for the pulse's runner to decide; a second Ctrl-C abandons"


@pytest.mark.parametrize(
    ("args", "said", "code"),
    [(["tick"], TICK_SAID, 130), ([], UP_SAID, 0)],
    ids=["tick", "foreground"],
)
def test_a_second_ctrl_c_abandons_the_decide(
    ctx: Ctx, tmp_path: Path, args: list[str], said: str, code: int
) -> None:
    gate, pgid_file = _slow_decider(ctx, tmp_path)
    env = clean_env(ctx.paths.data.parent, ctx.paths.data, LOOOP_INTERVAL="3600")
    p = subprocess.Popen(
        [sys.executable, "-m", "looop", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    seen = bytearray()
    try:
        assert p.stdout is not None
        w = os.open(gate, os.O_WRONLY)  # opens once the runner waits at the gate
        try:
            pgid = int(pgid_file.read_text())
            p.send_signal(signal.SIGINT)
            _await_text(p.stdout, said, seen)
            assert p.poll() is None and _group_alive(pgid)  # the decide goes on
            p.send_signal(signal.SIGINT)
            assert p.wait(timeout=60) == code
        finally:
            os.close(w)
        seen += p.stdout.read()
        assert not _group_alive(pgid), seen
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
    assert not (ctx.paths.data / "moved.txt").exists()
    records = [json.loads(line) for line in ctx.paths.events.read_text().splitlines()]
    assert [r["run_id"] for r in records if r.get("event") == "decide_abandoned"], seen
    assert not ctx.paths.journal.exists() or "moved" not in ctx.paths.journal.read_text()
