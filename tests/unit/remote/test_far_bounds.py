"""The bounds a start carries away from home, checked as outside input where they land: the
home's knobs go whole, a host takes them in place of its own, and a bad one (not a whole
number, negative, past its knob's range, a bool) is refused in one line naming the worker and
the bound, before the host changes anything. A cgroup's word that a run is at its process
bound is read from its pids files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from looop.core import limits
from looop.core.context import Ctx
from looop.home.errors import LooopError
from looop.remote import bounds
from looop.remote.ssh.link import PROTOCOL
from looop.remote.ssh.satellite import handle
from looop.remote.ssh.start import start_verb


def test_the_homes_knobs_travel_whole_and_replace_the_hosts_own(ctx: Ctx) -> None:
    home = dict(ctx.env, LOOOP_WORKER_MAX_PIDS="40", LOOOP_WORKER_MAX_DISK="0")
    sent = bounds.sent(Ctx(paths=ctx.paths, clock=ctx.clock, env=home, events=ctx.events).knobs())
    assert sent == {"pids": 40, "memory": 4 << 30, "disk": 0}
    host = ctx.knobs()
    got = bounds.taken(sent, "w1", host)
    assert [got.num(k) for k in bounds.NAMES.values()] == [40, 4 << 30, 0]
    assert bounds.taken(None, "w1", host) is host  # a home older than bounds: the host's own


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        ({"pids": -1}, "pids bound"),
        ({"pids": True}, "pids bound"),
        ({"memory": 1.5}, "memory bound"),
        ({"memory": "4Gi"}, "memory bound"),
        ({"disk": 1 << 41}, "disk bound"),
        ({"disk": "x" * 5000}, "disk bound"),
        ([512], "cannot read"),
    ],
)
def test_a_bad_bound_is_refused_in_one_line(ctx: Ctx, raw: Any, said: str) -> None:
    with pytest.raises(LooopError) as e:
        bounds.taken(raw, "w1", ctx.knobs())
    line = str(e.value)
    assert said in line and "worker w1" in line and "\n" not in line and len(line) < 300


def test_a_spawn_with_a_bad_bound_is_refused_before_anything_is_made(ctx: Ctx) -> None:
    req = {"v": PROTOCOL, "id": "w1", "line": "true", "prompt": "p", "env": {}}
    got = handle(ctx, "spawn", {**req, "bounds": {"pids": -5}}, "0", start_verb)
    assert "pids bound" in got["error"] and "worker w1" in got["error"], got
    assert not (ctx.paths.data / "sessions" / "w1").exists()
    assert not (ctx.paths.prompts / "w1.md").exists()


def _group(tmp_path: Path, files: dict[str, str]) -> str:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return str(tmp_path)


def test_a_pids_group_says_when_its_run_is_at_the_bound(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    assert limits._pids_group_full(str(tmp_path / "a")) is None  # no pids.max: none held here
    _group(tmp_path / "a", {"pids.max": "50\n", "pids.current": "12\n", "pids.events": "max 0\n"})
    assert limits._pids_group_full(str(tmp_path / "a")) is False
    _group(tmp_path / "a", {"pids.current": "50\n"})  # its next fork is refused
    assert limits._pids_group_full(str(tmp_path / "a")) is True
    # a flood that ended: refused forks counted once say nothing of now
    _group(tmp_path / "a", {"pids.events": "max 3\n", "pids.current": "7\n"})
    assert limits._pids_group_full(str(tmp_path / "a")) is False
    _group(tmp_path / "a", {"pids.max": "max\n"})  # unbounded
    assert limits._pids_group_full(str(tmp_path / "a")) is None


def _pod(reason: str | None, message: str = "", ended: str | None = None) -> Any:
    from types import SimpleNamespace as NS

    from looop.remote.kube import manifests as mf

    state = NS(terminated=NS(reason=ended) if ended else None)
    worker = NS(name=mf.CONTAINER, state=state)
    return NS(status=NS(reason=reason, message=message, container_statuses=[worker]))


def test_a_finished_pod_says_which_bound_it_met() -> None:
    from looop.remote.kube.cluster import limit_of

    assert limit_of(_pod(None, ended="OOMKilled")) == "memory"
    evicted = "Pod ephemeral local storage usage exceeds the total limit of containers 2Gi."
    assert limit_of(_pod("Evicted", evicted)) == "disk"
    assert limit_of(_pod("Evicted", "The node was low on resource: memory.")) is None
    assert limit_of(_pod(None, ended="Completed")) is None
    assert limit_of(None) is None
