"""Woken by the change (issue 56): a real answer, a real file change, a real worker exit wake
whoever waits on them at once, not at the next poll or interval."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from looop.core.context import Ctx
from looop.human.mailbox import answer
from tests.helpers import outside_env, wait_until

pytestmark = pytest.mark.timeout(60)


def test_an_answer_reaches_a_blocked_ask_at_once(ctx: Ctx) -> None:
    """With the ask's poll at a minute, only the answer's own arrival can wake it in time."""
    env = outside_env()
    env.update(LOOOP_DATA_DIR=str(ctx.paths.data), LOOOP_ASK_POLL_MS="60000")
    p = subprocess.Popen(
        [sys.executable, "-m", "looop", "ask", "w1", "--prompt", "Ship?"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert p.stderr is not None
        assert "waiting for an answer to w1-1" in p.stderr.readline()  # it is blocked now
        wait_until(lambda: (ctx.paths.asks / "w1-1.json").exists(), 20)
        start = time.monotonic()
        answer(ctx.paths.asks, ctx.paths.answers, "w1-1", "ship it", time.time())
        out, _ = p.communicate(timeout=20)
        took = time.monotonic() - start
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(10)
    assert p.returncode == 0 and out == "ship it\n"
    assert took < 5.0, f"the answer took {took:.2f}s to reach the waiting ask"
