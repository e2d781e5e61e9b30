"""Leases: atomic test-and-set, idempotent for the owner, dead holders reclaimed, safe reaping."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from looop.core.context import Ctx
from looop.human.leases import LeaseError, claim, reap_stale, session_alive, unclaim
from looop.loop.tick import tick
from tests.helpers import events, outside_env, wire

pytestmark = pytest.mark.timeout(120)


def _fake_live_sessions(data: Path, ids: list[str]) -> list[int]:
    """Session records whose lock this test process holds: exactly what liveness checks."""
    fds = []
    for sid in ids:
        d = data / "sessions" / sid
        d.mkdir(parents=True)
        (d / "meta.json").write_text(json.dumps({"id": sid, "cmd": ["x"]}))
        (d / "status.json").write_text(json.dumps({"state": "running"}))
        fd = os.open(d / "lock", os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        fds.append(fd)
    return fds


@pytest.fixture
def live(ctx: Ctx) -> Iterator[list[int]]:
    fds = _fake_live_sessions(ctx.paths.data, [f"w{i}" for i in range(50)])
    yield fds
    for fd in fds:
        os.close(fd)


def test_claim_rules(ctx: Ctx, live: list[int]) -> None:
    claims, alive = ctx.paths.claims, session_alive(ctx.paths.data)
    claims.mkdir()
    assert claim(claims, "repo-q", "w1", alive, 1.0) == (True, "w1")
    assert claim(claims, "repo-q", "w1", alive, 2.0) == (True, "w1")  # idempotent for the owner
    assert claim(claims, "repo-q", "w2", alive, 3.0) == (False, "w1")  # a live holder keeps it
    assert unclaim(claims, "repo-q", "w2", alive) is False
    assert unclaim(claims, "repo-q", "w1", alive) is True
    assert unclaim(claims, "repo-q", "w1", alive) is True  # releasing twice is fine
    assert claim(claims, "repo-q", "ghost", alive, 4.0) == (True, "ghost")
    assert claim(claims, "repo-q", "w3", alive, 5.0) == (True, "w3")  # a dead holder's lease
    (claims / "bad.json").write_text("{torn")
    assert claim(claims, "bad", "w4", alive, 6.0) == (True, "w4")  # unreadable = reclaimable
    for name in ("", "..", "a/b", ".hidden", "x" * 65, "a b"):
        with pytest.raises(LeaseError):
            claim(claims, name, "w1", alive, 7.0)


def test_fifty_processes_one_winner(ctx: Ctx, live: list[int]) -> None:
    env = outside_env()
    env["LOOOP_DATA_DIR"] = str(ctx.paths.data)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "looop", "claim", "deploy", "--session", f"w{i}"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(50)
    ]
    results = [(p.wait(timeout=60), *p.communicate()) for p in procs]
    winners = [i for i, (code, _, _) in enumerate(results) if code == 0]
    assert len(winners) == 1, results
    holder = json.loads((ctx.paths.claims / "deploy.json").read_text())["session"]
    assert holder == f"w{winners[0]}"
    losers = [err for code, _, err in results if code == 1]
    assert len(losers) == 49 and all(f"held by live session '{holder}'" in e for e in losers)


def test_reaper_keeps_live_leases_and_frees_dead_ones(ctx: Ctx, live: list[int]) -> None:
    claims, alive = ctx.paths.claims, session_alive(ctx.paths.data)
    claims.mkdir()
    claim(claims, "kept", "w5", alive, 1.0)
    claim(claims, "freed", "gone-worker", alive, 1.0)
    wire(ctx, [{"decision": {"action": "noop"}}])
    tick(ctx)
    assert (claims / "kept.json").exists() and not (claims / "freed.json").exists()
    assert "claim.reaped" in events(ctx)
    snap = json.loads((ctx.paths.snapshots / "sys-claims.json").read_text())
    assert [c["name"] for c in snap["signal"]] == ["kept"]
    assert reap_stale(claims, alive) == []


def test_cli_claim_uses_session_env_and_one_line_errors(ctx: Ctx, live: list[int]) -> None:
    env = outside_env()
    env.update(LOOOP_DATA_DIR=str(ctx.paths.data), LOOOP_SESSION_ID="w7")

    def looop(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "looop", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )

    r = looop("claim", "db")
    assert r.returncode == 0 and r.stdout == "claimed db\n"
    r = looop("_", "claim", "db")  # the seed's spelling
    assert r.returncode == 0
    r = looop("claim", "db", "--session", "w8")
    assert r.returncode == 1 and "w7" in r.stderr and r.stderr.count("\n") == 1
    r = looop("claim", "../etc")
    assert r.returncode == 1 and "invalid claim name" in r.stderr and r.stderr.count("\n") == 1
    r = looop("claim", "--help")
    assert r.returncode == 0 and "lease" in r.stdout
    assert looop("unclaim", "db").returncode == 0
    assert not (ctx.paths.claims / "db.json").exists()


def _box_holds(lock: Path) -> subprocess.Popen[str]:
    """Another process (a worker's box) that takes claims/.lock and keeps it."""
    code = (
        "import fcntl, os, sys\n"
        f"fd = os.open({str(lock)!r}, os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('held', flush=True)\n"
        "sys.stdin.read()\n"
    )
    box = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert box.stdout is not None and box.stdout.readline() == "held\n"
    return box


def test_a_box_holding_the_claims_lock_blocks_no_claim_and_no_beat(
    ctx: Ctx, live: list[int]
) -> None:
    ctx.paths.claims.mkdir()
    claim(ctx.paths.claims, "stale", "gone-worker", session_alive(ctx.paths.data), 1.0)
    box = _box_holds(ctx.paths.claims / ".lock")
    try:
        env = outside_env()
        env.update(LOOOP_DATA_DIR=str(ctx.paths.data), LOOOP_SESSION_ID="w7")
        started = time.monotonic()
        r = subprocess.run(
            [sys.executable, "-m", "looop", "claim", "db"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,  # on a lock waited on without bound this is where it hung
        )
        assert r.returncode == 0 and r.stdout == "claimed db\n", r.stderr
        assert time.monotonic() - started < 10
        wire(ctx, [{"decision": {"action": "noop"}}])
        started = time.monotonic()
        done = threading.Thread(target=tick, args=(ctx,), daemon=True)
        done.start()
        done.join(timeout=60)
        assert not done.is_alive(), "the beat waited on the box's lock"
        assert not (ctx.paths.claims / "stale.json").exists()  # reaped all the same
    finally:
        box.communicate("", timeout=10)
