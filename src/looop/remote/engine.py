"""Workers away from home, whatever engine runs them. The home's record of each
(`hosts/workers/<id>.json`) names its host and the host's record its kind; this picks the
`Backend` — `SshBackend` (remote/ssh) or `HostedKube` (remote/kube) — for everything that
drives one: the decider's moves, `ls` and sys-sessions rows, `looop down`, the human verbs.

A host that does not answer (an SSH link down, a cluster's API out of reach) makes its
workers `unreachable`: alive, nothing reaped, until it answers again. An ended worker's row
carries the outcome the beat recorded for it (loop/ended.py), as a worker at home's does."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from looop.core.context import Ctx, ctx_for
from looop.home import store, where
from looop.home.clock import Clock
from looop.home.config import Knobs
from looop.home.errors import LooopError
from looop.remote import dispatch, untrusted
from looop.remote import hosts as reg
from looop.remote.hosts import LOCAL, AnyHost, Host, HostError, KubeHost
from looop.remote.kube import podlook
from looop.remote.kube.backend import HostedKube
from looop.remote.ssh.backend import LIMIT_HEALTH, LS_TIMEOUT_S, SshBackend, host_rows
from looop.remote.ssh.link import Link, link_at
from looop.sessions.state import SessionError
from looop.views import outcomes
from looop.views.needsinput import HEALTH
from looop.views.workerrows import health, verify_result, waiting_workers
from looop.workers.backend import Backend
from looop.workers.errors import Refused, Unreached

if TYPE_CHECKING:
    from looop.workers.started import Away


def host_of(data: Path, wid: str) -> AnyHost | None:
    """The host running remote worker `wid` (None: not a remote worker); a host record that
    is gone or unreadable is a HostError naming it."""
    name = reg.host_of(data, wid)
    return reg.lookup(data, name) if name is not None else None


def backend_for(ctx: Ctx, wid: str) -> Backend | None:
    """The backend of a remote worker the home started (None: not a remote worker)."""
    h = host_of(ctx.paths.data, wid)
    if isinstance(h, KubeHost):
        return HostedKube(ctx.paths.data, h, ctx.clock, ctx.env, ctx=ctx)
    return SshBackend(ctx, h.name) if h is not None else None


def remote_of(ctx: Ctx, wid: str) -> Backend | None:
    """backend_for, paying nothing in a data dir without hosts (one stat); a host record
    gone or unreadable is a refusal naming the worker."""
    if not reg.record_file(ctx.paths.data, wid).exists():
        return None
    try:
        return backend_for(ctx, wid)
    except Unreached:
        raise
    except LooopError as e:
        raise Refused(f"worker {wid}: {e}") from None


def remote_at(env: Mapping[str, str], clock: Clock, wid: str) -> Backend | None:
    """remote_of for a verb that read the home as strings (a session verb): its Ctx is
    made here, where the rooms away load anyway."""
    return remote_of(ctx_for(env, clock, None), wid)


def _rows(
    data: Path,
    recs: dict[str, dict[str, Any]],
    answers: Mapping[str, Mapping[str, dict[str, Any]] | None],
    row_of: Callable[[str, str, dict[str, Any], dict[str, Any]], dict[str, Any]],
) -> list[dict[str, Any]]:
    """Each worker's row from its host's answer (`row_of`: a worker it listed); one its
    answering host no longer lists, or lists ended, is marked over with its bound (a host's
    word, a Job's OOMKilled or eviction); a silent host's live workers read `unreachable`."""
    out: list[dict[str, Any]] = []
    for wid, rec in recs.items():
        host = rec["host"]
        listing = answers.get(host)
        got = listing.get(wid) if listing is not None else None
        if listing is not None and (got is None or not got.get("alive")):
            # still said running or starting once over: its supervisor died there (killed)
            said = (got or {}).get("state")
            ended = "killed" if said in ("killed", "running", "starting", "dead") else "exited"
            reg.mark_over(data, wid, (got or {}).get("exit_code"), ended)
            keep_limit(data, wid, got)
        if got is None and not rec.get("over") and host in answers and listing is None:
            out.append(base_row(wid, host, rec, "unreachable", True, None, None))
        elif got is None:
            rec = reg.record(data, wid) or rec
            out.append(base_row(wid, host, rec, "exited", False, rec.get("exit_code"), None))
        else:
            out.append(row_of(wid, host, rec, got))
    return out


def _ls(lk: Link) -> dict[str, dict[str, Any]] | None:
    """The SSH host's workers by id, or None when it does not answer."""
    rows = host_rows(lk, "ls", {})
    if rows is None:
        return None
    return {r["id"]: r for r in rows[::-1] if isinstance(r.get("id"), str)}  # of twins, the first


def _listing(b: HostedKube) -> dict[str, dict[str, Any]] | None:
    """A namespace's workers of this home, or None when its API does not answer."""
    try:
        return b.listing(LS_TIMEOUT_S)
    except LooopError:  # out of reach, refused, a kubeconfig that does not load, no client
        return None


def _pod_row(
    data: Path,
    wid: str,
    host: str,
    rec: dict[str, Any],
    got: dict[str, Any],
    judge: tuple[set[str], int],
) -> dict[str, Any]:
    """A pod worker's row from its namespace's listing."""
    if rec.get("over") or not got["alive"]:
        rec = reg.record(data, wid) or rec
        return base_row(wid, host, rec, "exited", False, rec.get("exit_code"), None)
    r = base_row(wid, host, rec, str(got["state"]), True, None, None)
    r["health"] = health(wid, True, *judge, None)
    r["started_at"] = got["started_at"] or rec.get("started_at")
    return r


def _far_row(
    wid: str,
    host: str,
    rec: dict[str, Any],
    row: dict[str, Any],
    clock: Clock,
    judge: tuple[set[str], int],
) -> dict[str, Any]:
    """A live or ended worker's row from its host's `ls` answer (`judge`: the workers
    waiting on an ask, the stuck bound)."""
    now = clock.now()
    # the host's answer is outside input: a number past any real one reads as unknown.
    # How long it has been quiet is the host's measure on its own monotonic clock, an
    # age taken from our now: never its wall clock against ours.
    quiet = untrusted.age(row.get("quiet_s"))
    last = now - quiet if quiet is not None else None
    alive = row.get("alive") is True
    said = untrusted.words(row.get("state")) or "unknown"
    r = base_row(wid, host, rec, said, alive, untrusted.exit_code(row.get("exit_code")), last)
    if alive:
        r["health"] = health(wid, True, *judge, quiet)
        _screen_waits(r, row.get("needs_input"))
    _at_limit(r, row.get("limit"))  # at a bound there (remote/ssh/farbounds.py)
    r["note"] = untrusted.words(row.get("note")) if alive else None
    r["label"] = untrusted.words(row.get("label")) or said
    r["started_at"] = untrusted.stamp(row.get("started_at"), now) or rec.get("started_at")
    r["last_output_at"] = clock.offset_stamp_at(last) if last is not None else None
    return r


def _screen_waits(r: dict[str, Any], said: Any) -> None:
    """A busy or quiet worker whose screen its host judged waiting on a human (its approval
    prompt, its idle input box: remote/ssh/satellite.py) is needs-input, as one here would be;
    the host's words are outside input: one plain line, cut."""
    words = untrusted.words(said)
    if words and r["health"] in ("busy", "stuck"):
        plain = " ".join("".join(c if c.isprintable() else " " for c in words).split())
        r["health"], r["needs_input"] = HEALTH, plain


def _at_limit(r: dict[str, Any], limit: Any) -> dict[str, Any]:
    """The row of a worker at a bound on its host says which, as `ls` says it here."""
    if limit in LIMIT_HEALTH:
        r["limit"], r["health"] = limit, LIMIT_HEALTH[str(limit)]
    return r


def keep_limit(data: Path, wid: str, row: dict[str, Any] | None) -> None:
    """An ended worker's bound, as its host said it, kept in the home's record: the host is
    not asked about an ended worker again."""
    limit = (row or {}).get("limit")
    rec = reg.record(data, wid)
    if rec is not None and limit in LIMIT_HEALTH and rec.get("limit") != limit:
        store.write_json(reg.record_file(data, wid), {**rec, "limit": limit})


def base_row(
    wid: str,
    host: str,
    rec: dict[str, Any],
    state: str,
    alive: bool,
    exit_code: Any,
    last: Any,
) -> dict[str, Any]:
    row = {
        "id": wid,
        "state": state,
        "alive": alive,
        "exit_code": exit_code if isinstance(exit_code, int) else None,
        "health": "unreachable" if state == "unreachable" else ("busy" if alive else "dead"),
        "note": None,
        "verify": None,
        "verify_output": None,
        "started_at": rec.get("started_at"),
        "last_output_at": None,
        "last_output_unix": last if isinstance(last, float) else None,
        "needs_input": None,
        "ask_since_unix": None,
        "pending_tells": 0,
        "label": state,
        "sandboxed": rec.get("sandboxed") is True,
        "branch": rec.get("branch") if isinstance(rec.get("branch"), str) else None,
        "host": host,
    }
    return _at_limit(row, rec.get("limit"))  # ended at a bound there: the home kept its word


def remote_rows(
    home: str | Path,
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
    data = Path(home)
    hosts: dict[str, AnyHost] = {}
    for name in reg.names(data):
        try:
            hosts[name] = reg.lookup(data, name)
        except HostError:
            continue  # an unreadable record: `host ls` says so; its workers read as SSH's do
    recs, judge = reg.records(data), (waiting, stuck_secs)
    links: dict[str, Link] = {}
    backends: dict[str, HostedKube] = {}  # each host asked once, all at once
    for name in sorted({r["host"] for r in recs.values() if not r.get("over")}):
        h = hosts.get(name)
        if isinstance(h, KubeHost):
            backends[name] = HostedKube(data, h, clock, env)
        elif isinstance(h, Host):
            lk = link_at(data, h)
            links[name] = Link(data, h, env, bin or lk.bin) if env is not None else lk
    pods = {w: r for w, r in recs.items() if isinstance(hosts.get(r["host"]), KubeHost)}
    away = {w: r for w, r in recs.items() if w not in pods}  # an SSH host, or one gone
    rows = _rows(
        data, away, reg.each_at_once(links, _ls), partial(_far_row, clock=clock, judge=judge)
    )
    if pods:  # a worker whose Job is finished or gone is marked over; `look`: the beat's
        on_pods = _rows(
            data, pods, reg.each_at_once(backends, _listing), partial(_pod_row, data, judge=judge)
        )
        if look:
            podlook.look(data, on_pods, backends, clock)
        else:
            podlook.kept(data, on_pods, clock)
        rows += on_pods
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
        dict(name=h.name, kind=h.kind, workers=n, cap=h.cap, reachable=h.name not in silent)
        for h, n in reg.loads(data)
    ]
    for r in far:  # the fields fleet_view's rows carry that remote rows lack
        r.setdefault("note", None)
    return sorted(rows + far, key=lambda r: str(r["id"])), hosts


class Engine:
    """What a worker's backend, the fleet's rows, the beat's sessions probe and a start away
    take from here (`looop.remote.rooms()` hands this out)."""

    away: ClassVar[Away] = dispatch  # where a start whose host is not here goes
    remote_of = staticmethod(remote_of)
    remote_at = staticmethod(remote_at)
    remote_rows = staticmethod(remote_rows)
    with_hosts = staticmethod(with_hosts)
    kind_of = staticmethod(reg.host_kind)  # ssh, k8s; None: no such host readable
