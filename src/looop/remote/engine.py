"""Workers away from home, whatever engine runs them. The home's record of each
(`hosts/workers/<id>.json`) names its host and the host's record its kind; this picks the
`Backend` — `SshBackend` (remote/ssh) or `HostedKube` (remote/kube) — for everything that
drives one: the decider's moves, `ls` and sys-sessions rows, `looop down`, the human verbs.

A host that does not answer (an SSH link down, a cluster's API out of reach) makes its
workers `unreachable`: alive, nothing reaped, until it answers again. An ended worker's row
carries the outcome the beat recorded for it (loop/ended.py), as a worker at home's does."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from looop.core.context import Ctx
from looop.home import where
from looop.home.clock import Clock
from looop.home.config import Knobs
from looop.home.errors import LooopError
from looop.remote import hosts as reg
from looop.remote.hosts import LOCAL, AnyHost, HostError, KubeHost
from looop.remote.kube import podlook
from looop.remote.kube.hosted import HostedKube
from looop.remote.place import loads
from looop.remote.ssh.backend import LS_TIMEOUT_S, SshBackend, base_row, keep_limit
from looop.remote.ssh.backend import remote_rows as ssh_rows
from looop.sessions.state import SessionError
from looop.views import outcomes
from looop.views.workerrows import health, verify_result, waiting_workers
from looop.workers.backend import Backend


def host_of(data: Path, wid: str) -> AnyHost | None:
    """The host running remote worker `wid` (None: not a remote worker); a host record that
    is gone or unreadable is a HostError naming it."""
    name = reg.host_of(data, wid)
    return reg.lookup(data, name) if name is not None else None


def backend_on(ctx: Ctx, h: AnyHost) -> Backend:
    if isinstance(h, KubeHost):
        return HostedKube(ctx.paths.data, h, ctx.clock, ctx.env, ctx=ctx)
    return SshBackend(ctx, h.name)


def backend_for(ctx: Ctx, wid: str) -> Backend | None:
    """The backend of a remote worker the home started (None: not a remote worker)."""
    h = host_of(ctx.paths.data, wid)
    return backend_on(ctx, h) if h is not None else None


def remote_of(ctx: Ctx, wid: str) -> Backend | None:
    """backend_for, paying nothing in a data dir without hosts (one stat)."""
    if not reg.record_file(ctx.paths.data, wid).exists():
        return None
    return backend_for(ctx, wid)


def _listing(b: HostedKube) -> dict[str, dict[str, Any]] | None:
    """A namespace's workers of this home, or None when its API does not answer."""
    try:
        return b.listing(LS_TIMEOUT_S)
    except LooopError:  # out of reach, refused, a kubeconfig that does not load, no client
        return None


def kube_rows(
    data: Path,
    clock: Clock,
    stuck_secs: int,
    waiting: set[str],
    env: Mapping[str, str] | None = None,
    look: bool = False,
) -> list[dict[str, Any]]:
    """Fleet rows for workers on Kubernetes hosts: each namespace asked once (two API
    calls), all at once; a cluster out of reach leaves its workers `unreachable`, alive. A
    worker whose Job is finished or gone is marked over. `look` (the beat's): each live
    worker's log is read and its screen judged (remote/kube/podlook); else the last beat's
    verdicts stand."""
    hosts: dict[str, KubeHost] = {}
    for name in reg.names(data):
        try:
            h = reg.lookup(data, name)
        except HostError:
            continue  # an unreadable record: `host ls` says so; its workers read as SSH's do
        if isinstance(h, KubeHost):
            hosts[name] = h
    recs = {w: r for w, r in reg.records(data).items() if r["host"] in hosts}
    if not recs:
        return []
    wanted = sorted({r["host"] for r in recs.values() if not r.get("over")})
    backends = {n: HostedKube(data, hosts[n], clock, env) for n in wanted}
    with concurrent.futures.ThreadPoolExecutor(max(1, len(backends))) as pool:
        answers = dict(zip(backends, pool.map(_listing, backends.values()), strict=True))
    out: list[dict[str, Any]] = []
    for wid, rec in recs.items():
        host = rec["host"]
        listing = answers.get(host)
        if rec.get("over") or host not in answers:
            out.append(base_row(wid, host, rec, "exited", False, rec.get("exit_code"), None))
            continue
        if listing is None:
            out.append(base_row(wid, host, rec, "unreachable", True, None, None))
            continue
        got = listing.get(wid)
        if got is None or not got["alive"]:
            code = got["exit_code"] if got is not None else None
            reg.mark_over(data, wid, code)
            keep_limit(data, wid, got)  # OOMKilled, or evicted past its ephemeral storage
            rec = reg.record(data, wid) or rec
            out.append(base_row(wid, host, rec, "exited", False, rec.get("exit_code"), None))
            continue
        r = base_row(wid, host, rec, str(got["state"]), True, None, None)
        r["health"] = health(wid, True, waiting, stuck_secs, None)
        r["started_at"] = got["started_at"] or rec.get("started_at")
        out.append(r)
    if look:
        podlook.look(data, out, backends, clock)
    else:
        podlook.kept(data, out, clock)
    return out


def remote_rows(
    data: Path,
    clock: Clock,
    stuck_secs: int,
    waiting: set[str],
    env: dict[str, str] | None = None,
    bin: str | None = None,
    look: bool = False,
) -> list[dict[str, Any]]:
    """Fleet rows for every remote worker: SSH hosts' and Kubernetes hosts', each with its
    verify result as the home recorded it (workers/verify.py brings an SSH host's home);
    `look`: the beat's, which judges pod workers' screens."""
    rows = ssh_rows(data, clock, stuck_secs, waiting, env, bin)
    rows += kube_rows(data, clock, stuck_secs, waiting, env, look)
    verify = str(data / where.VERIFY)
    for r in rows:
        v = verify_result(verify, r["id"])
        if v:
            r["verify"] = "pass" if v.get("pass") else "fail"
            r["verify_output"] = v.get("output")
        r["outcome"] = None if r["alive"] else _outcome(data, str(r["id"]))
    return rows


def _outcome(data: Path, wid: str) -> str | None:
    """An ended worker's outcome, once the beat recorded it (loop/ended.record_far_ends) for
    the generation the home's record names (its host's own start stamp may differ)."""
    rec = reg.record(data, wid) or {}
    gen = str(rec.get("started_at") or "")
    return outcomes.outcome_of(outcomes.read_record(str(data), wid), gen)


def remote_rows_at(
    data: str, clock: Clock, stuck_secs: int, env: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """remote_rows for the home's fleet (views/fleet.py, `looop ls`): the data dir as a
    string, the workers waiting on an ask read here."""
    waiting = waiting_workers(where.join(data, where.ASKS), where.join(data, where.ANSWERS))
    return remote_rows(Path(data), clock, stuck_secs, waiting, env)


def kill_all(ctx: Ctx) -> tuple[list[str], list[str]]:
    """`looop down`: every remote worker still running is killed where it runs; (the killed,
    one line for each that could not be, by id)."""
    killed: list[str] = []
    failed: list[str] = []
    data = ctx.paths.data
    for wid, rec in reg.records(data).items():
        if rec.get("over"):
            continue
        try:
            b = backend_for(ctx, wid)
            if b is None:
                continue
            b.kill(wid)
            killed.append(wid)
        except (LooopError, SessionError) as e:
            now = reg.record(data, wid)
            if now is not None and now.get("over"):
                continue  # it had ended on its own: nothing left to stop
            failed.append(f"remote worker {wid} on {rec['host']} is not stopped: {e}")
    return killed, failed


def with_hosts(
    ctx: Ctx, rows: list[dict[str, Any]], stuck: int, knobs: Knobs | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """sys-sessions with hosts: the remote workers' rows (`unreachable` for a silent host)
    and each place's load (live workers / cap, and whether it answered), so the decider
    sees where there is room."""
    data = ctx.paths.data
    if not reg.names(data):
        return rows, []
    waiting = waiting_workers(str(ctx.paths.asks), str(ctx.paths.answers))
    far = remote_rows(data, ctx.clock, stuck, waiting, dict(ctx.env), ctx.bin, look=True)
    cap = (knobs if knobs is not None else ctx.knobs()).num("max_workers")
    local_live = sum(1 for r in rows if r["alive"])
    silent = {r["host"] for r in far if r["health"] == "unreachable"}
    hosts = [{"name": LOCAL, "workers": local_live, "cap": cap, "reachable": True}]
    hosts += [
        {
            "name": h.name,
            "kind": h.kind,
            "workers": n,
            "cap": h.cap,
            "reachable": h.name not in silent,
        }
        for h, n in loads(data)
    ]
    for r in far:  # the fields fleet_view's rows carry that remote rows lack
        r.setdefault("note", None)
    return sorted(rows + far, key=lambda r: str(r["id"])), hosts
