"""The session verbs not proven elsewhere, on a worker on a real SSH host, from home: restart
(alive and after it ended), resize, attach with a real terminal, wait-idle, expect's other
ends, `log -f`; the web API reading and driving it (and saying 503 while its host is cut);
and `looop watch`'s pane showing its screen."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pexpect
import pytest

from tests.hosts.conftest import LOOOP, Home
from tests.hosts.util import home_env, looop
from tests.hosts.webutil import Web, web_server  # noqa: F401 (the `web` fixture)

# an interactive shell with a prompt of its own
SHELL = "env PS1='IN$ ' bash --norc --noprofile -i"
# a real program: says who runs it, echoes what it reads, bursts on demand (a line every
# 0.1 s until it reads `stop`, a minute at most: a burst of a fixed length could end before a
# loaded machine's next verb reaches the host), exits on quit
# bash's `read -t` keeps what it read of a line when the timeout strikes mid-line (it reads a
# tty a byte at a time): the rest is read at once, or `stop` could be lost in two halves
PROG = (
    "bash -c 'echo ready-$(id -un); n=0; while read -r l; do n=$((n+1)); "
    'if [ "$l" = burst ]; then i=0; while [ $i -lt 600 ]; do i=$((i+1)); echo tick-$i; '
    'read -r -t 0.1 s; r=$?; [ $r -gt 128 ] && [ -n "$s" ] && read -r t && s=$s$t && r=0; '
    '[ $r = 0 ] && [ "$s" = stop ] && break; done; echo "burst ended at tick-$i"; fi; '
    'echo "got[$n]: $l"; [ "$l" = quit ] && exit 4; done\''
)


def _until(cond: Callable[[], object], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"{what} not seen within {timeout}s")
        time.sleep(0.1)


def _start(d: Path, wid: str, host: str, command: str, ready: str) -> None:
    got = looop(
        d,
        "worker",
        "start",
        wid,
        "x",
        "--host",
        host,
        "--command",
        f"{command} # {{{{prompt_file}}}}",
    )
    assert got.returncode == 0, got.stderr
    seen = looop(d, "expect", wid, ready, "--timeout", "30s")
    assert seen.returncode == 0, (seen.stderr, looop(d, "log", wid).stdout)


def _row(d: Path, wid: str) -> dict[str, Any]:
    rows = json.loads(looop(d, "ls", "-a", "--json").stdout)
    return next(r for r in rows if r["id"] == wid)


def _pid_after(d: Path, wid: str) -> str:
    """The shell's pid, as it answers a command typed now."""
    sent = looop(d, "send", wid, "--json", 'echo "PID=$$"')
    offset = str(json.loads(sent.stdout)["offset"])
    got = looop(d, "expect", wid, r"PID=\d+", "--since", offset, "--json", "--timeout", "20s")
    assert got.returncode == 0, got.stderr
    return str(json.loads(got.stdout)["matched"])


def _user(home: Home, name: str) -> str:
    """The lab user a host's worker runs as (each lab has users of its own)."""
    return next(h.user for h in home.lab.hosts if h.name == name)


@pytest.mark.timeout(180)
def test_resize_and_restart_a_remote_worker(home: Home) -> None:
    d = home.data
    _start(d, "rv1", "h1", SHELL, r"IN\$")
    resized = looop(d, "resize", "rv1", "100x30")
    assert resized.returncode == 0 and "100x30" in resized.stdout, resized.stderr
    shot = json.loads(looop(d, "shot", "rv1", "--json").stdout)
    assert (shot["cols"], shot["rows"]) == (100, 30)
    looop(d, "send", "rv1", "stty size")  # the program itself sees the new size
    assert looop(d, "expect", "rv1", "30 100", "--timeout", "20s").returncode == 0

    before = _pid_after(d, "rv1")
    again = looop(d, "restart", "rv1")
    assert again.returncode == 0, again.stderr
    _until(lambda: _pid_after(d, "rv1") != before, 30, "a new shell after restart")
    assert _row(d, "rv1")["alive"] is True
    # the decider's restart_session reaches it there too, through its backend
    from looop.act.executor import execute
    from looop.act.parse import decision_from_obj
    from looop.core.context import ctx_for
    from looop.home.clock import SystemClock

    ctx = ctx_for(home_env(d), SystemClock(), None)
    mid = _pid_after(d, "rv1")
    move = decision_from_obj({"action": "restart_session", "id": "rv1"})
    assert execute(ctx, ctx.knobs(), move, actor="pulse").summary
    _until(lambda: _pid_after(d, "rv1") != mid, 30, "a new shell after restart_session")

    # an ended one is refused in one line, as a local one is (only a worker with a recorded
    # agent conversation starts again once over)
    looop(d, "send", "rv1", "exit 5")
    assert looop(d, "wait", "rv1", "--timeout", "20s").returncode == 5
    assert _row(d, "rv1")["alive"] is False
    late = looop(d, "restart", "rv1")
    assert late.returncode == 1 and late.stderr.count("\n") == 1, late.stderr
    assert "already finished" in late.stderr


@pytest.mark.timeout(120)
def test_attach_a_real_terminal_to_a_remote_worker(home: Home) -> None:
    d = home.data
    _start(d, "rv2", "h2", SHELL, r"IN\$")
    child = pexpect.spawn(
        str(LOOOP),
        ["attach", "rv2"],
        env=home_env(d, TERM="xterm"),
        cwd=str(d.parent),
        dimensions=(24, 80),
        encoding="utf-8",
        codec_errors="replace",
        timeout=20,
    )
    try:
        child.send("echo attached-$((6*7))\r")
        child.expect_exact("attached-42")
        child.send("\x1c\x1c")  # Ctrl-\ twice: detach, the worker goes on
        child.expect_exact("[detached from session rv2]")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    assert _row(d, "rv2")["alive"] is True
    log = looop(d, "log", "rv2").stdout  # what was typed through the terminal reached it
    assert "attached-42" in log
    looop(d, "kill", "rv2")


@pytest.mark.timeout(180)
def test_wait_idle_expect_and_log_follow_on_a_remote_worker(home: Home) -> None:
    d = home.data
    _start(d, "rv3", "h3", PROG, f"ready-{_user(home, 'h3')}")
    quiet = looop(d, "wait-idle", "rv3", "--settle", "500ms", "--timeout", "20s")
    assert quiet.returncode == 0, quiet.stderr
    burst = looop(d, "send", "rv3", "burst")  # a line every 0.1 s until it reads `stop`
    assert burst.returncode == 0, burst.stderr
    assert looop(d, "expect", "rv3", "tick-2", "--timeout", "20s").returncode == 0
    busy = looop(d, "wait-idle", "rv3", "--settle", "1s", "--timeout", "1500ms")
    assert busy.returncode == 124  # never quiet for a second while it bursts
    stop = looop(d, "send", "rv3", "stop")
    assert stop.returncode == 0, stop.stderr  # unsaid, the burst runs its whole minute
    settled = looop(d, "wait-idle", "rv3", "--settle", "1s", "--timeout", "30s")
    assert settled.returncode == 0, (settled.stderr, looop(d, "log", "rv3", "--tail", "8").stdout)
    ended = re.search(r"burst ended at tick-(\d+)", looop(d, "log", "rv3", "--tail", "5").stdout)
    assert ended and int(ended.group(1)) < 600  # the word stopped it, not the minute's cap
    since = looop(d, "log", "rv3", "--since", "1h")  # its host finds where that hour begins
    assert since.returncode == 0 and since.stdout == looop(d, "log", "rv3").stdout, since.stderr

    never = looop(d, "expect", "rv3", "never-printed", "--timeout", "2s")
    assert never.returncode == 124 and "Traceback" not in never.stderr
    looop(d, "send", "rv3", "on the screen")
    screen = looop(d, "expect", "rv3", r"got\[\d+\]: on the screen", "--screen", "--timeout", "20s")
    assert screen.returncode == 0 and "on the screen" in screen.stdout

    follow = subprocess.Popen(
        [str(LOOOP), "log", "-f", "rv3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=home_env(d),
        cwd=str(d.parent),
    )
    try:
        assert follow.stdout is not None
        seen: list[str] = []

        def has(text: str) -> bool:
            line = follow.stdout.readline() if follow.stdout else ""
            seen.append(line)
            return text in "".join(seen)

        _until(lambda: has(f"ready-{_user(home, 'h3')}"), 30, "the log so far")
        looop(d, "send", "rv3", "followed")
        _until(lambda: has(": followed"), 30, "a new line followed")
        looop(d, "send", "rv3", "quit")
        out, err = follow.communicate(timeout=30)  # it ends once the worker has
        seen.append(out)
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait(10)
    assert follow.returncode == 4, err  # the worker's own exit code
    assert ": quit" in "".join(seen)
    ended = looop(d, "expect", "rv3", "never-printed", "--timeout", "20s")
    assert ended.returncode == 1  # the session ended first


def _text(shot: dict[str, Any]) -> str:
    return "\n".join("".join(r["t"] for r in line) for line in shot["lines"])


@pytest.mark.timeout(240)
def test_the_web_api_reads_and_drives_a_remote_worker(home: Home, web: Web) -> None:
    d = home.data
    h1 = next(h for h in home.lab.hosts if h.name == "h1")
    _start(d, "rv4", "h1", PROG, f"ready-{h1.user}")
    code, rows = web.call("GET", "/sessions")
    assert code == 200
    mine = [r for r in rows if r["id"] == "rv4"]
    assert mine and mine[0]["host"] == "h1" and mine[0]["alive"], rows

    code, shot = web.call("GET", "/sessions/rv4/screen")
    assert code == 200 and shot["alive"] is True and f"ready-{h1.user}" in _text(shot), shot
    assert f"ready-{h1.user}" in _text(web.first_screen("rv4"))

    assert web.call("POST", "/sessions/rv4/send", {"text": "from the web"})[0] == 200
    got = looop(d, "expect", "rv4", r"got\[1\]: from the web", "--timeout", "20s")
    assert got.returncode == 0, got.stderr
    assert web.call("POST", "/sessions/rv4/send", {"text": "typed", "enter": False})[0] == 200
    assert web.call("POST", "/sessions/rv4/keys", {"keys": ["Enter"]})[0] == 200
    assert looop(d, "expect", "rv4", r"got\[2\]: typed", "--timeout", "20s").returncode == 0
    code, log = web.call("GET", "/sessions/rv4/log?tail=4")
    assert code == 200 and log["text"].endswith("got[2]: typed"), log
    assert log["text"] == looop(d, "log", "rv4", "--tail", "4").stdout.rstrip("\n")  # as the CLI
    code, told = web.call("POST", "/sessions/rv4/tell", {"message": "a word from home"})
    assert code == 200 and (d / "tells" / f"{told['id']}.json").exists()

    h1.cut()
    try:
        code, err = web.call("GET", "/sessions/rv4/screen")
        assert code == 503, err
        assert "unreachable" in err["error"] and "\n" not in err["error"]
        assert web.call("GET", "/sessions/rv4/log")[0] == 503
        assert web.call("POST", "/sessions/rv4/send", {"text": "lost"})[0] == 503
        code, rows = web.call("GET", "/sessions")
        row = next(r for r in rows if r["id"] == "rv4")
        assert row["health"] == "unreachable" and row["alive"] is True, row
    finally:
        h1.restore()
    _until(lambda: web.call("GET", "/sessions/rv4/screen")[0] == 200, 60, "the screen back")
    assert web.call("POST", "/sessions/rv4/kill", {"reason": "done"})[0] == 200
    _until(lambda: not _row(d, "rv4")["alive"], 30, "the remote worker over")
    code, shot = web.call("GET", "/sessions/rv4/screen")  # a finished one's screen stays
    assert code == 200 and shot["alive"] is False and "from the web" in _text(shot)
    assert "lost" not in looop(d, "log", "rv4").stdout


@pytest.mark.timeout(120)
def test_watch_shows_a_remote_workers_screen(home: Home) -> None:
    from looop.core.context import ctx_for
    from looop.home.clock import SystemClock
    from looop.tui.app import WatchApp
    from tests.integration.test_watch import SIZE, pane, status, until

    d = home.data
    _start(d, "rv5", "h2", PROG, f"ready-{_user(home, 'h2')}")
    looop(d, "send", "rv5", "seen in watch")
    ctx = ctx_for(home_env(d), SystemClock(), None)

    async def scenario() -> None:
        app = WatchApp(ctx, "rv5")
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: "seen in watch" in pane(app), "its screen", limit=30)
            assert f"ready-{_user(home, 'h2')}" in pane(app) and "rv5 @h2" in status(app)
            await pilot.press("q")

    asyncio.run(scenario())
    # the verb takes the remote id (and goes on to want a terminal), refuses an unknown one
    named = looop(d, "watch", "rv5")
    assert named.returncode != 0 and "needs a terminal" in named.stderr, named.stderr
    unknown = looop(d, "watch", "nope5")
    assert unknown.returncode != 0 and "nope5" in unknown.stderr
    assert "Traceback" not in unknown.stderr and unknown.stderr.count("\n") == 1
    looop(d, "kill", "rv5")
