"""A remote worker's verify, both ends, without a network: the host's `verify` op
(remote/ssh/hostverify.py) runs a worker's check once, in its workspace, in a process of its
own, and keeps the result; the home (hostverify.run_far) asks only for workers it has seen
over, one call per host, and records what comes back where a local result goes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from looop.core.context import Ctx
from looop.home.errors import LooopError
from looop.remote import hosts as reg
from looop.remote.hosts import HostError
from looop.remote.ssh import hostverify
from looop.remote.ssh.link import Unreachable
from looop.workers import verify as home_verify

pytestmark = pytest.mark.process  # real processes: not make check's tier


def _op(ctx: Ctx, sid: str, cmd: str, timeout: float = 20, wait: float = 20) -> dict[str, Any]:
    got = hostverify.verify(
        ctx, {"runs": [{"id": sid, "cmd": cmd}], "timeout": timeout, "wait": wait}
    )
    return dict(got["verify"][sid])


@pytest.mark.timeout(60)
def test_the_host_runs_it_once_in_the_workspace_and_keeps_the_result(ctx: Ctx) -> None:
    work = ctx.paths.data / "work" / "w1"
    work.mkdir(parents=True)
    (work / "made.txt").write_text("x")
    cmd = 'echo ran >> ../count; test -f made.txt && echo "in $PWD as $LOOOP_SESSION_ID"'
    first = _op(ctx, "w1", cmd)
    assert first["state"] == "done" and first["pass"] is True and first["exit_code"] == 0
    assert f"in {work} as w1" in first["output"]
    again = _op(ctx, "w1", cmd)  # asked again (an answer lost on the way home): not re-run
    assert again == first
    assert (work.parent / "count").read_text() == "ran\n"


@pytest.mark.timeout(60)
def test_a_failure_and_a_timeout_are_results_too(ctx: Ctx) -> None:
    (ctx.paths.data / "work" / "f1").mkdir(parents=True)
    (ctx.paths.data / "work" / "t1").mkdir(parents=True)
    fail = _op(ctx, "f1", "echo out; echo why >&2; exit 3")
    assert fail["pass"] is False and fail["exit_code"] == 3 and not fail["timed_out"]
    assert "out" in fail["output"] and "why" in fail["output"]
    slow = _op(ctx, "t1", "sleep 30", timeout=0.5)
    assert slow["pass"] is False and slow["timed_out"] is True and slow["exit_code"] is None
    assert "0.5s" in slow["output"]


@pytest.mark.timeout(60)
def test_a_run_still_going_is_waited_on_never_started_twice(ctx: Ctx) -> None:
    (ctx.paths.data / "work" / "r1").mkdir(parents=True)
    cmd = "echo ran >> ../count-r1; sleep 1.5; echo late"
    assert _op(ctx, "r1", cmd, wait=0)["state"] == "running"  # the asker gave up at once
    assert _op(ctx, "r1", cmd, wait=0)["state"] == "running"  # asked again while it runs
    done = _op(ctx, "r1", cmd, wait=20)
    assert done["state"] == "done" and "late" in done["output"]
    assert (ctx.paths.data / "work" / "count-r1").read_text() == "ran\n"


def test_a_run_cut_without_a_result_is_a_failure_not_a_second_run(ctx: Ctx) -> None:
    d = hostverify.run_dir(ctx.paths.data, "c1")
    d.mkdir(parents=True)
    (d / "req.json").write_text('{"v": 1, "cmd": "touch ran"}')  # started, then the host went
    got = _op(ctx, "c1", "touch ran")
    assert got["state"] == "done" and got["pass"] is False and "not run again" in got["output"]
    assert not (ctx.paths.data / "work" / "c1" / "ran").exists()


@pytest.mark.timeout(60)
def test_a_new_worker_of_the_id_ends_the_last_ones_run(ctx: Ctx) -> None:
    (ctx.paths.data / "work" / "k1").mkdir(parents=True)
    assert _op(ctx, "k1", "sleep 30", wait=0)["state"] == "running"
    d = hostverify.run_dir(ctx.paths.data, "k1")
    hostverify.forget(ctx.paths.data, "k1")
    assert not d.exists()
    end = time.monotonic() + 10
    while time.monotonic() < end and (d / "lock").exists():
        time.sleep(0.05)
    assert _op(ctx, "k1", "echo fresh")["output"] == "fresh"  # its own run, not the last one's


def test_bad_requests_are_refused_in_one_line(ctx: Ctx) -> None:
    for req in (
        {},
        {"runs": "x", "timeout": 1},
        {"runs": [{"id": "w1"}], "timeout": 1},
        {"runs": [{"id": "../x", "cmd": "true"}], "timeout": 1},
        {"runs": [{"id": "w1", "cmd": "true"}]},
    ):
        with pytest.raises(LooopError) as got:
            hostverify.verify(ctx, req)
        assert "\n" not in str(got.value)


# -- the home's side ----------------------------------------------------------------------


class FakeLink:
    def __init__(self, answer: dict[str, Any] | Exception) -> None:
        self.answer = answer
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def call(self, op: str, req: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
        self.calls.append((op, req))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def _home(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch, answer: dict[str, Any] | Exception
) -> FakeLink:
    data = ctx.paths.data
    reg.add(data, "s1", "ssh://me@h", 0)
    ctx.paths.verify.mkdir(parents=True, exist_ok=True)
    for wid, over in (("a", True), ("b", True), ("live", False)):
        reg.write_record(data, wid, "s1", over=over)
        (ctx.paths.verify / f"{wid}.cmd").write_text(f"check-{wid}\n")
    fake = FakeLink(answer)
    monkeypatch.setattr(hostverify, "link", lambda c, name: fake)
    return fake


def _run(ctx: Ctx) -> list[str]:
    def local(*a: object) -> None:
        pytest.fail("local")

    return home_verify.run_pending_verifies(ctx, ctx.knobs(), [], local, run_far=hostverify.run_far)


def test_the_home_asks_once_per_host_for_the_workers_it_saw_over(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = {"state": "done", "pass": True, "exit_code": 0, "timed_out": False, "output": "ok"}
    fake = _home(ctx, monkeypatch, {"verify": {"a": done, "b": {"state": "running"}}})
    assert _run(ctx) == ["a"]
    [(op, req)] = fake.calls
    assert op == "verify" and [r["id"] for r in req["runs"]] == ["a", "b"]  # not `live`
    assert req["runs"][0]["cmd"] == "check-a" and req["timeout"] == 60
    got = json.loads((ctx.paths.verify / "a.json").read_text())
    assert got["pass"] is True and got["host"] == "s1" and got["output"] == "ok"
    assert not (ctx.paths.verify / "b.json").exists()  # still running there: a later beat
    fake.calls.clear()
    _run(ctx)
    assert [r["id"] for r in fake.calls[0][1]["runs"]] == ["b"]  # a is done: never asked again


def test_a_host_out_of_reach_leaves_them_pending(ctx: Ctx, monkeypatch: pytest.MonkeyPatch) -> None:
    _home(ctx, monkeypatch, Unreachable("host s1 does not answer"))
    assert _run(ctx) == []
    assert not list(ctx.paths.verify.glob("*.json"))


def test_a_host_that_cannot_verify_fails_them_saying_why(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    _home(ctx, monkeypatch, HostError("unknown satellite verb 'verify'"))
    assert sorted(_run(ctx)) == ["a", "b"]
    got = json.loads((ctx.paths.verify / "a.json").read_text())
    assert got["pass"] is False and "unknown satellite verb" in got["output"]


def test_the_workspace_is_the_checkout_while_there_is_one(ctx: Ctx) -> None:
    plain = ctx.paths.data / "work" / "w9"
    assert hostverify.workspace(ctx, "w9") == plain
    path = str(ctx.paths.worktrees / "w9")
    rec = {"wid": "w9", "repo": "/r", "branch": "b", "base": "", "path": path}
    rec |= {"common": "/r/.git", "gitdir": "/r/.git/worktrees/w9"}
    ctx.paths.worktrees.mkdir(parents=True)
    (ctx.paths.worktrees / "w9.json").write_text(json.dumps(rec))
    assert hostverify.workspace(ctx, "w9") == Path(path)
    (ctx.paths.worktrees / "w9.json").write_text(json.dumps({**rec, "removed": True}))
    assert hostverify.workspace(ctx, "w9") == plain
