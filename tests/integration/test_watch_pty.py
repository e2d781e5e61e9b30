"""`looop watch` in a real 80×24 terminal (pexpect, the screen read back through pyte): the
top line keeps the pulse, its next beat, the spend and the asks; the bottom line the key
legend; `?` lists every key; `p` pauses a real pulse and resumes it, journaled."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pexpect
import pyte
import pytest

from tests.helpers import clean_env, kill_sessions

LOOOP = str(Path(sys.executable).with_name("looop"))
COLS, ROWS = 80, 24


class Term:
    """A real PTY running `looop watch`, its screen kept by pyte."""

    def __init__(self, env: dict[str, str]) -> None:
        self.screen = pyte.Screen(COLS, ROWS)
        self.stream = pyte.ByteStream(self.screen)
        self.child = pexpect.spawn(LOOOP, ["watch"], env=env, dimensions=(ROWS, COLS))

    def pump(self) -> None:
        while True:
            try:
                self.stream.feed(self.child.read_nonblocking(65536, timeout=0.05))
            except pexpect.TIMEOUT:
                return
            except pexpect.EOF:
                return

    def lines(self) -> list[str]:
        self.pump()
        return list(self.screen.display)

    def text(self) -> str:
        return "\n".join(self.lines())

    def until(self, cond: Callable[[], bool], what: str, limit: float = 20.0) -> None:
        deadline = time.monotonic() + limit
        while not cond():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} not on screen within {limit}s:\n{self.text()}")
            self.pump()  # waits on the PTY's output, never a blind sleep

    def send(self, keys: str) -> None:
        self.child.send(keys)


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LOOOP, *args], env=env, capture_output=True, text=True, timeout=90, check=False
    )


@pytest.fixture
def home(tmp_path: Path) -> Iterator[dict[str, Any]]:
    data = tmp_path / "data"
    script = tmp_path / "script.json"
    script.write_text(json.dumps([{"action": "noop"}] * 50))
    tick = f"{sys.executable} -m looop.demo.runner --script {script}"
    config = tmp_path / "config.json"
    runners = {"s": {"tick": tick, "worker": "cat"}}
    config.write_text(json.dumps({"default": "s", "runners": runners, "max_daily_usd": 5}))
    env = clean_env(tmp_path, data, LOOOP_CONFIG=str(config), TERM="xterm-256color")
    try:
        yield {"env": env, "data": data}
    finally:
        _cli(env, "down")
        kill_sessions(data / "sessions")


@pytest.mark.timeout(150)
def test_watch_at_80x24_keeps_the_glance_and_the_legend_and_pauses(home: dict[str, Any]) -> None:
    env, data = home["env"], home["data"]
    up = _cli(env, "up")
    assert up.returncode == 0, up.stderr
    ask = subprocess.Popen(
        [LOOOP, "ask", "w1", "--prompt", "ship?"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    term = Term(env)
    try:
        term.until(lambda: "next beat in" in term.lines()[0], "the next beat")
        top, bottom = term.lines()[0], term.lines()[-1]
        assert top.startswith("pulse up · next beat in"), top
        term.until(lambda: "· 1 ask ·" in term.lines()[0], "the pending ask")
        top = term.lines()[0]
        assert "$0.00/$5.00 today" in top, top
        assert "? keys" in bottom and "q quit" in bottom and "k kill" in bottom, bottom
        assert "pulse" in term.text()  # the fleet table's pulse row

        term.send("?")
        term.until(lambda: "Ctrl-C the selected worker" in term.text(), "every key")
        term.send("\x1b")
        term.until(lambda: "Ctrl-C the selected worker" not in term.text(), "the list gone")

        term.send("p")
        term.until(lambda: "Pause the pulse?" in term.text(), "pause's confirm")
        term.send("y")
        term.until(lambda: term.lines()[0].startswith("pulse paused"), "the pulse paused", 60)
        journal = (data / "journal.md").read_text()
        assert "watch: paused the pulse" in journal
        term.send("p")
        term.until(lambda: "Resume the pulse" in term.text(), "resume's confirm")
        term.send("y")
        term.until(lambda: term.lines()[0].startswith("pulse up"), "the pulse back", 60)
        assert "watch: resumed the pulse" in (data / "journal.md").read_text()

        term.send("q")
        term.child.expect(pexpect.EOF, timeout=20)
    finally:
        term.child.close(force=True)
        ask.kill()
        ask.wait(timeout=10)
