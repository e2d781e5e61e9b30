"""Remote workers as the home drives them: start, the `Backend` face, fleet rows, and the
human verbs forwarded to the host's satellite.

The home keeps one record per remote worker (`hosts/workers/<id>.json`: its host; over or
not). The host is asked, never guessed: a host that does not answer makes its workers
`unreachable` — not dead, nothing reaped — until it answers again."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from looop.core.context import Ctx
from looop.home import store
from looop.home.knobs import Knobs
from looop.remote import bounds, untrusted
from looop.remote import hosts as reg
from looop.remote.hosts import HostError
from looop.remote.repospec import is_host_path
from looop.remote.ssh.link import OP_TIMEOUT_S, Link, Unreachable, link
from looop.sessions.state import Session, SessionError
from looop.spend.spent import BUDGETS
from looop.views.outcomes import BOUND_WORDS
from looop.workers.backend import Reach, T, Ways
from looop.workers.diskuse import size
from looop.workers.errors import ChangeError, Refused
from looop.workers.polled import Polled
from looop.workers.review import Review, away_review, far_diff
from looop.workers.started import StartRequest
from looop.workers.startrecord import encode_sandbox

LS_TIMEOUT_S = 10.0
# a bound a host says its worker is at, as `ls` says it (the local words: views/workerrows.py)
LIMIT_HEALTH = {
    "pids": "at its process limit",
    "memory": "hit its memory limit",
    "disk": "over disk limit",
}
CLONE_OP_TIMEOUT_S = 660.0  # a start that clones: the host's clone limit and then some


def start_remote(
    ctx: Ctx, host: str, req: StartRequest, prompt: str, contract: str | None = None
) -> tuple[Session, list[dict[str, Any]]]:
    """`req.line` still holds {{prompt_file}}: the host fills in its own copy of the prompt.
    `contract`: given apart from `prompt` so the host can add its checkout's note to it;
    `req.repo`: a path of a repository on the host (a worktree) or a URL it clones, on
    `req.branch`; `req.repos`: several paths there, a worktree of each side by side. The
    worker's session, and its checkouts as the host made them (treerecord.Tree's fields;
    [] without a repo)."""
    lk = link(ctx, host)
    wid, runner, repo = req.worker, req.runner or "", req.repo
    spawn = spawn_request(req, prompt, contract)
    if req.policy is not None and req.policy.on:  # the host's refusals name it as the home does
        spawn |= {"sandbox": encode_sandbox(req.policy), "host": host}
    cloning = repo is not None and not is_host_path(repo)
    with reg.starting(ctx.paths.data, wid, host, runner):
        try:
            got = lk.call("spawn", spawn, timeout=CLONE_OP_TIMEOUT_S if cloning else OP_TIMEOUT_S)
        except HostError as e:
            raise SessionError(f"worker {wid} did not start on host {host}: {e}") from e
    row = got.get("row") or {}
    many = got.get("trees")
    trees = many if isinstance(many, list) and all(isinstance(t, dict) for t in many) else []
    more: dict[str, Any] = {}
    if trees:  # `ls` and sys-sessions show its branch with no call to the host
        tree = trees[0]
        path = tree.get("path")
        if len(trees) > 1 and isinstance(path, str):  # it works in their folder
            path = os.path.dirname(path.rstrip("/"))
        more = {"repo": repo, "branch": tree.get("branch"), "workspace": path}
    if "sandbox" in spawn:
        more["sandboxed"] = True
    more["bounds"] = spawn["bounds"]  # what its lines name (check_bounds)
    started = untrusted.stamp(row.get("started_at"), ctx.clock.now())  # the host's word
    reg.write_record(
        ctx.paths.data, wid, host, started_at=started, runner=runner, over=False, **more
    )
    return as_session(ctx.paths.data, host, row), trees


def spawn_request(req: StartRequest, prompt: str, contract: str | None) -> dict[str, Any]:
    """The satellite's `spawn` request: what it needs, and each option only when given."""
    spawn: dict[str, Any] = dict(id=req.worker, line=req.line, prompt=prompt, size=list(req.size))
    spawn |= {"env": req.env_additions(), "bounds": dict(req.bounds)}  # bounded as here
    template, conv, find = req.resumable
    for key, value in (
        ("mcp", True if req.mcp else None),  # the host wires `looop mcp --worker` (mcpwire.py)
        ("contract", contract),
        ("repo", req.repo),
        ("repos", list(req.repos) if len(req.repos) > 1 else None),
        ("branch", req.branch),
        ("resume", template),
        ("conversation", conv),
        ("find", find),
    ):
        if value is not None:
            spawn[key] = value
    return spawn


def as_session(data: Path, host: str, row: dict[str, Any]) -> Session:
    return Session(
        id=str(row.get("id")),
        cmd=[],
        state=str(row.get("state", "running")),
        alive=bool(row.get("alive")),
        exit_code=untrusted.exit_code(row.get("exit_code")),
        signaled=False,
        started_at=untrusted.words(row.get("started_at"), 40) or "",
        last_change=untrusted.words(row.get("last_change"), 40) or "",
        note=untrusted.words(row.get("note")),
        child_pid=None,
        cols=0,
        rows=0,
        output_bytes=0,
        dir=str(reg.record_file(data, str(row.get("id")))),
        label=str(row.get("label") or row.get("state") or ""),
    )


class SshBackend(Polled):
    """Sessions on one SSH host, through its satellite: the `Backend` interface."""

    kind = "ssh"

    def __init__(self, ctx: Ctx, host: str) -> None:
        self.ctx = ctx
        self.clock = ctx.clock
        self.host = host
        self.link = link(ctx, host)

    def _call(self, op: str, sid: str, **req: Any) -> dict[str, Any]:
        """A satellite verb on this worker; one an older satellite does not know refused
        naming the way out."""
        try:
            return far_call(self.ctx, self.host, op, {"id": sid, **req}, lk=self.link)
        except Older as e:
            raise Refused(str(e)) from None
        except Unreachable:
            raise
        except HostError as e:
            raise SessionError(str(e)) from e

    def reach(self, sid: str) -> Reach:
        try:
            got = self._call("reach", sid)
        except Unreachable:
            return "unreachable"
        if got.get("reach") == "over":
            reg.mark_over(self.ctx.paths.data, sid, untrusted.exit_code(got.get("exit_code")))
            return "over"
        return "alive"

    def screen(self, sid: str, fmt: str = "plain", trim: bool = True) -> dict[str, Any]:
        return self._call("screen", sid, format=fmt, trim=trim)

    def log(self, sid: str, since: int = 0, raw: bool = False) -> tuple[str, int]:
        got = self._call("log", sid, since=since, raw=raw)
        text = got.get("text", "")
        offset = untrusted.count(got.get("offset", 0), untrusted.OFFSET_MAX)
        if not isinstance(text, str) or offset is None:
            raise SessionError(f"host {self.host} answered a log read with a bad offset: retry")
        return text, offset

    def offset_at(self, sid: str, when: float) -> int:
        got = untrusted.count(
            self._call("offset_at", sid, when=when).get("offset", 0), untrusted.OFFSET_MAX
        )
        if got is None:
            raise SessionError(f"host {self.host} answered a log time with a bad offset: retry")
        return got

    def send(self, sid: str, text: str | bytes, newline: bool = True) -> dict[str, Any]:
        t = text.decode(errors="replace") if isinstance(text, bytes) else text
        return self._call("send", sid, text=t, newline=newline)

    def key(self, sid: str, names: Sequence[str]) -> dict[str, Any]:
        return self._call("key", sid, names=list(names))

    def wait(self, sid: str, timeout_s: float | None) -> int:
        got = self._call("wait", sid, timeout=timeout_s)
        code = untrusted.exit_code(got.get("code", 1))
        return 1 if code is None else code

    def kill(self, sid: str) -> dict[str, Any]:
        got = self._call("kill", sid)
        reg.mark_over(self.ctx.paths.data, sid, None, "killed")
        return got

    def restart(self, sid: str) -> dict[str, Any]:
        return self._call("restart", sid)

    def exit_status(self, sid: str) -> int | None:
        got = self._call("reach", sid)
        return untrusted.exit_code(got.get("exit_code"))

    def pause(self, sid: str) -> bool:
        """Paused whole on its host, as at home (the satellite's sessions/hold)."""
        return self._call("pause", sid).get("paused") is True

    def resize(self, sid: str, cols: int, rows: int) -> dict[str, Any]:
        return self._call("resize", sid, cols=cols, rows=rows)

    def detach(self, sid: str) -> dict[str, Any]:
        return self._call("detach", sid)

    def diff(self, sid: str) -> dict[str, Any]:
        """Read on its host, where its checkouts are (the satellite's workers/review)."""
        return far_diff(self._call("diff", sid), sid, f"host {self.host}")

    def review(self, sid: str) -> Review:
        """Read on its host by its satellite with the same review code (act/landthere.py's
        `review` verb), with this home's rounds, verify and proposal (workers/review.py's
        away_review, which a pod's review shares); what the host says against it is its one
        line."""

        def ask(req: dict[str, Any]) -> dict[str, Any]:
            return far_call(self.ctx, self.host, "review", req, 60.0)

        try:
            return away_review(self.ctx, sid, ask, f"host {self.host}")
        except Unreachable:
            raise
        except HostError as e:
            raise ChangeError(str(e)) from None

    def change(self, sid: str, ways: Ways[T]) -> T:
        return ways.host(sid, self.host)

    def attach(
        self, sid: str, passthrough: bool, env: Mapping[str, str], detach_keys: str = ""
    ) -> int:
        """This terminal on the worker through the link: `looop attach` runs on its host."""
        flags = ["--passthrough"] if passthrough else []
        flags += ["--detach-keys", detach_keys] if detach_keys else []
        return self.link.passthrough(["attach", *flags, "--", sid], tty=True)

    def go_on(self, sid: str) -> bool:
        """All it runs goes on there; its disk bound said again if it still keeps too much."""
        rec = reg.record(self.ctx.paths.data, sid)
        if rec is not None and rec.get("said"):
            told = [x for x in rec.get("said") or [] if x != "disk"]
            store.write_json(reg.record_file(self.ctx.paths.data, sid), {**rec, "said": told})
        return self._call("go_on", sid).get("goes_on") is True


def ssh_records(data: Path) -> dict[str, dict[str, Any]]:
    """The home's records of workers on hosts that are not Kubernetes hosts (an SSH host, or
    one no longer registered)."""
    recs = reg.records(data)
    kinds = {name: reg.host_kind(data, name) for name in {r["host"] for r in recs.values()}}
    return {wid: rec for wid, rec in recs.items() if kinds[rec["host"]] != reg.K8S}


def forward(ctx: Ctx, sid: str, argv: list[str], tty: bool = False) -> int | None:
    """Run a human session verb on the worker's host when the worker is remote (its exit
    code); None when it is not a remote worker."""
    host = reg.host_of(ctx.paths.data, sid)
    if host is None:
        return None
    return link(ctx, host).passthrough(argv, tty=tty)


class Older(HostError):
    """The host's satellite does not know the verb: its looop is older than the home's."""


def far_call(
    ctx: Ctx,
    host: str,
    op: str,
    req: dict[str, Any],
    timeout: float = OP_TIMEOUT_S,
    lk: Link | None = None,
) -> dict[str, Any]:
    """One satellite verb on `host`; one an older satellite does not know is one line."""
    try:
        return (lk or link(ctx, host)).call(op, req, timeout)
    except Unreachable:
        raise
    except HostError as e:
        if f"unknown satellite verb '{op}'" in str(e):
            raise Older(
                f"host {host}'s looop is older than this home's and cannot {op} a worker "
                f"there — run `looop host install {host}`"
            ) from None
        raise


# -- the home's word on its SSH workers' bounds


def host_rows(lk: Link, op: str, req: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The workers' rows a host's `ls` or `bounds` answers; None when it does not answer."""
    try:
        got = lk.call(op, req, timeout=LS_TIMEOUT_S)
    except HostError:
        return None
    rows = got.get("workers")
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else None


def check_bounds(ctx: Ctx, knobs: Knobs) -> list[str]:
    """Each beat every host with workers of this home not yet seen over (or over and not yet
    asked since) is asked once, all at once (its satellite's `bounds`: farbounds.py); each
    worker newly at a bound there said once, in a line naming the worker, its host and the
    bound — at its process bound, killed at its memory bound, paused whole for its disk
    (`worker continue` lets it go on: go_on). The ones said."""
    data = ctx.paths.data
    recs = {w: r for w, r in ssh_records(data).items() if not r.get("over") or not r.get("asked")}
    disk = knobs.num("worker_max_disk")
    hosts = {h: h for h in sorted({r["host"] for r in recs.values()})}
    said = []

    def ask(host: str) -> list[dict[str, Any]]:  # a silent host's workers: asked next beat
        return host_rows(link(ctx, host), "bounds", {"disk": disk}) or []

    for host, rows in reg.each_at_once(hosts, ask).items():
        for row in rows:
            wid = row.get("id")
            rec = recs.get(wid) if isinstance(wid, str) else None
            if wid is None or rec is None or rec["host"] != host:
                continue  # only this home's workers on that host (its word is outside input)
            if _say(ctx, str(wid), host, rec, row):
                said.append(str(wid))
    for wid in recs:  # an ended worker's end is asked about once
        fresh = reg.record(data, wid)
        if fresh is not None and fresh.get("over") and not fresh.get("asked"):
            store.write_json(reg.record_file(data, wid), {**fresh, "asked": True})
    return said


def _say(ctx: Ctx, wid: str, host: str, rec: dict[str, Any], row: dict[str, Any]) -> bool:
    """One worker's bound, said once (the home's record keeps which were)."""
    limit = row.get("limit")
    if limit not in LIMIT_HEALTH:
        return False
    fresh = reg.record(ctx.paths.data, wid) or rec
    was = fresh.get("said")
    told: list[Any] = was if isinstance(was, list) else []
    if limit in told:
        return False
    store.write_json(reg.record_file(ctx.paths.data, wid), {**fresh, "said": [*told, limit]})
    given = fresh.get("bounds")
    sent: dict[str, Any] = given if isinstance(given, dict) else {}
    n = untrusted.count(row.get("max") or sent.get(limit), 1 << 40) or 0
    bound = bounds.shown(str(limit), n) if n else f"{BOUND_WORDS[str(limit)]} limit"
    where = f"worker {wid} on host {host}"
    if limit == "disk":
        _over_disk(ctx, wid, host, bound, row)
        return True
    if limit == "pids":
        msg = f"{where} is at its {bound}: its next fork fails until some of its processes end"
    else:
        msg = f"{where} hit its {bound}: it was killed"
    ctx.events.emit("warn", "worker.at_limit", msg, id=wid)
    ctx.events.record("worker_at_limit", id=wid, host=host, limit=limit, max=n)
    return True


def _over_disk(ctx: Ctx, wid: str, host: str, bound: str, row: dict[str, Any]) -> None:
    """Paused whole on its host: marked over here too, so `ls` says so and `worker continue`
    lets it go on."""
    folder = untrusted.words(row.get("folder"), 200) or "its folders"
    used = untrusted.count(row.get("bytes"), 1 << 50) or 0
    mark = {"limit": "disk", "host": host, "folder": folder, "bytes": used, "policy": "pause"}
    store.write_json(os.path.join(str(ctx.paths.data), BUDGETS, f"{wid}.over"), mark)
    msg = (
        f"worker {wid} on host {host} keeps more than its {bound} ({size(used)} in {folder}): "
        f"paused whole there — free it, then `looop worker continue {wid}`"
    )
    ctx.events.emit("warn", "worker.over_disk", msg, id=wid)
    ctx.events.record("worker_over_disk", id=wid, host=host, folder=folder, bytes=used)
