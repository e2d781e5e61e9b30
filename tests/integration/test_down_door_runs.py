"""`looop down` leaves nothing of the home running (issue 51): a worker whose verbs wait at its
door in the background (`"$LOOOP_BIN" ask … &`, as the soak's workers do) has each of them
run by the home's door as the home's own `looop` in a session of its own; `down` ends every
one of those runs with the fleet, whether it was still starting, already waiting on a human,
or its worker was killed after its call had been held past the door's hold (asked again with
the same key), checked the moment `down` returns.

The soak's leftovers were the last kind: the door answered the second call of a worker gone
("its door is shut") and put that answer on file, but ended the run only for a call that had
started it; `down` took the answer on file for a run that had ended, and let it be."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from looop.home.peers import holder
from looop.home.sessionfiles import socket_file
from looop.sessions.hostdoor import descends
from tests.helpers import clean_env, stop_sessions, wait_until
from tests.procwatch import by_argv, describe, kill_all, tagged

pytestmark = [pytest.mark.timeout(180), pytest.mark.process]

ASKS = 3  # a worker keeps at most 3 asks pending
# asks in the background at once, then the worker goes on with its own work
WORKER = (
    "sh -c 'for i in " + " ".join(str(i) for i in range(ASKS)) + "; do "
    '"$LOOOP_BIN" ask --prompt "soak: go $i?" --options yes,no >/dev/null 2>&1 & done; '
    "exec sleep 600' # {{prompt_file}}"
)


def _looop(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "looop", *args], env=env, capture_output=True, text=True, timeout=120
    )


def _home(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    data = tmp_path / "data"
    data.mkdir()
    (data / "config.json").write_text(json.dumps({"sandbox": "off", "max_daily_usd": 0}))
    env = clean_env(tmp_path, data, LOOOP_BIN=f"{sys.executable} -m looop")
    return data, env


def _left(data: Path) -> list[int]:
    """The home's processes still running: by its data dir in the environment (every run of
    the home's `looop`), or in the arguments (a door's run, `sh -c … DATA ENTRY …`)."""
    return sorted(set(tagged("LOOOP_DATA_DIR", str(data))) | set(by_argv(str(data))))


def _clients(data: Path, wid: str) -> list[int]:
    """The worker's own `looop ask` processes, knocking at its door (LOOOP_DOOR), not the
    door's runs of them (which speak as the worker too); under this home's supervisor of
    `wid` only (another test's, or the user's, `w1` knocks at its own door)."""
    sup = holder(socket_file(str(data), wid))
    if sup is None:
        return []
    out = []
    for pid in tagged("LOOOP_SESSION_ID", wid):
        if not descends(pid, sup):
            continue
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"ask" in argv and any(v.startswith(b"LOOOP_DOOR=") for v in env):
            out.append(pid)
    return out


def _sockets(pid: int) -> set[str]:
    """The sockets a process holds now (a knock at the door is a new one)."""
    fds = Path(f"/proc/{pid}/fd")
    out = set()
    for fd in fds.iterdir() if fds.is_dir() else []:
        try:
            link = os.readlink(fd)
        except OSError:
            continue
        if link.startswith("socket:"):
            out.add(link)
    return out


def _asked(data: Path) -> int:
    asks = data / "asks"
    return len(list(asks.glob("*.json"))) if asks.is_dir() else 0


@pytest.mark.parametrize("when", ["waiting", "starting"])
def test_down_ends_every_background_verb_a_worker_left_at_its_door(
    tmp_path: Path, when: str
) -> None:
    """`waiting`: every ask is on file, its run waiting on the human; `starting`: `down`
    comes while the worker's asks are still knocking and their runs starting."""
    data, env = _home(tmp_path)
    try:
        for wid in ("w1", "w2"):
            r = _looop(env, "worker", "start", wid, "work", "--no-sandbox", "--command", WORKER)
            assert r.returncode == 0, r.stdout + r.stderr
        if when == "waiting":
            wait_until(lambda: _asked(data) == 2 * ASKS, timeout=90, what="every ask on file")
        else:
            entries = str(data / ".contract")
            wait_until(lambda: bool(by_argv(entries)), timeout=90, what="a door's first run")
        r = _looop(env, "down")
        assert r.returncode == 0, r.stdout + r.stderr
        left = _left(data)
        assert not left, f"running after `looop down` ({when}): {describe(left)}"
    finally:
        kill_all(_left(data))
        stop_sessions(data)


def test_down_ends_the_asks_of_a_worker_killed_after_they_knocked_again(tmp_path: Path) -> None:
    """The door holds a call HOLD_S (25 s), answers 202, and the worker's `ask` knocks again
    with the same key: the run goes on, this call did not start it. The worker is killed;
    the door answers that call "its door is shut"; `down` must still end the run."""
    data, env = _home(tmp_path)
    try:
        r = _looop(env, "worker", "start", "w1", "work", "--no-sandbox", "--command", WORKER)
        assert r.returncode == 0, r.stdout + r.stderr
        wait_until(lambda: _asked(data) == ASKS, timeout=90, what="every ask on file")
        wait_until(
            lambda: len(c := _clients(data, "w1")) == ASKS and all(_sockets(p) for p in c),
            timeout=60,
            what="each ask knocking",
        )
        first = {p: _sockets(p) for p in _clients(data, "w1")}
        wait_until(
            lambda: all(_sockets(p) - first[p] for p in first),
            timeout=90,
            what="each ask knocking again (the door's 202 after its hold)",
        )
        r = _looop(env, "kill", "w1")
        assert r.returncode == 0, r.stdout + r.stderr
        entries = [d for d in (data / ".contract" / "w1").iterdir() if d.is_dir()]
        assert len(entries) == ASKS, entries
        # a call held at the kill is answered "its door is shut" (an ask whose hold ran out
        # just before, its client killed before it knocked again, has none: down's alone)
        wait_until(
            lambda: any((d / "code").exists() for d in entries),
            timeout=30,
            what="the door's answer to a call of the worker gone",
        )
        r = _looop(env, "down")
        assert r.returncode == 0, r.stdout + r.stderr
        left = _left(data)
        assert not left, f"running after `looop down`: {describe(left)}"
    finally:
        kill_all(_left(data))
        stop_sessions(data)


def _fake_run(data: Path, key: str, *verb: str) -> subprocess.Popen[bytes]:
    """A door's run as contract/answering.py's `spawn_run` starts it (its own session), with no
    `pid` on file: the spawn came before the write (a full disk, or `down` in between)."""
    from looop.contract.answering import SH, STATE_DIR, WRAP

    d = data / STATE_DIR / "w1" / key
    d.mkdir(parents=True)
    argv = [SH, "-c", WRAP, "sh", str(data), str(d), os.devnull, *verb]
    return subprocess.Popen(argv, start_new_session=True)


def _sleeping(pgid: int) -> bool:
    """Whether a `sleep` runs in process group `pgid` (the verb is past its `trap`); one
    that ended but is not reaped yet does not."""
    for entry in os.listdir("/proc"):
        try:
            stat = Path(f"/proc/{entry}/stat").read_bytes()
        except OSError:
            continue
        name, rest = stat[stat.find(b"(") + 1 : stat.rfind(b")")], stat[stat.rfind(b")") + 2 :]
        fields = rest.split()
        if name == b"sleep" and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


def test_end_runs_finds_a_run_by_what_it_is_and_kills_one_that_ignores_sigterm(
    tmp_path: Path,
) -> None:
    import time

    from looop.contract.doorruns import end_runs

    data, other = tmp_path / "data", tmp_path / "other"
    plain = _fake_run(data, "plainkey1", "sleep", "120")
    stubborn = _fake_run(data, "stubborn1", "sh", "-c", "trap '' TERM; sleep 120 & wait")
    (data / ".contract" / "w1" / "plainkey1" / "code").write_text("3\n")  # a door's refusal
    theirs = _fake_run(other, "otherkey1", "sleep", "120")  # another home's: left alone
    try:
        wait_until(lambda: _sleeping(stubborn.pid), 10, "the stubborn run ignoring SIGTERM")
        assert end_runs(str(data), time.monotonic, settle_s=1.0) == 2
        left = by_argv(str(data))
        assert not left, describe(left)
        assert plain.wait(5) != 0 and stubborn.wait(5) != 0
        assert not _sleeping(stubborn.pid), "a verb ignoring SIGTERM outlived end_runs"
        assert theirs.poll() is None, "another home's run was ended"
    finally:
        for p in (plain, stubborn, theirs):
            with contextlib.suppress(OSError):
                os.killpg(p.pid, 9)
            p.wait(5)
