"""Remote workers as the home drives them: start, the `Backend` face, fleet rows, and the
human verbs forwarded to the host's satellite.

The home keeps one record per remote worker (`hosts/workers/<id>.json`: its host; over or
not). The host is asked, never guessed: a host that does not answer makes its workers
`unreachable` — not dead, nothing reaped — until it answers again."""

from __future__ import annotations

import concurrent.futures
import os
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from looop.core.context import Ctx
from looop.home import store
from looop.home.clock import Clock
from looop.remote import bounds, untrusted
from looop.remote import hosts as reg
from looop.remote.hosts import HostError
from looop.remote.repospec import is_host_path
from looop.remote.ssh.farreview import far_review
from looop.remote.ssh.link import OP_TIMEOUT_S, Link, Unreachable, link, link_at
from looop.sessions.state import Session, SessionError
from looop.views.needsinput import HEALTH
from looop.views.workerrows import health
from looop.workers.backend import Reach, StartSpec, T, Ways
from looop.workers.change import far_diff
from looop.workers.errors import ChangeError, Refused
from looop.workers.polled import Polled
from looop.workers.resume import encode_sandbox
from looop.workers.started import StartRequest

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
    sandbox = req.policy
    boxed = sandbox is not None and sandbox.on
    if sandbox is not None and sandbox.on:
        spawn["sandbox"] = encode_sandbox(sandbox)
        spawn["host"] = host  # the host's own refusals name it as the home does

    cloning = repo is not None and not is_host_path(repo)
    with reg.starting(ctx.paths.data, wid, host, runner):
        try:
            got = lk.call("spawn", spawn, timeout=CLONE_OP_TIMEOUT_S if cloning else OP_TIMEOUT_S)
        except HostError as e:
            raise SessionError(f"worker {wid} did not start on host {host}: {e}") from e
    row = got.get("row") or {}
    trees = _trees(got)
    more: dict[str, Any] = {}
    if trees:  # `ls` and sys-sessions show its branch with no call to the host
        tree = trees[0]
        path = tree.get("path")
        if len(trees) > 1 and isinstance(path, str):  # it works in their folder
            path = os.path.dirname(path.rstrip("/"))
        more = {"repo": repo, "branch": tree.get("branch"), "workspace": path}
    if boxed:
        more["sandboxed"] = True
    more["bounds"] = spawn["bounds"]  # what its lines name (remote/ssh/bounded.py)
    started = untrusted.stamp(row.get("started_at"), ctx.clock.now())  # the host's word
    reg.write_record(
        ctx.paths.data, wid, host, started_at=started, runner=runner, over=False, **more
    )
    return as_session(ctx.paths.data, host, row), trees


def _trees(got: dict[str, Any]) -> list[dict[str, Any]]:
    """The checkouts a spawn's answer names: its "trees", or an older host's one "tree"."""
    many = got.get("trees")
    if isinstance(many, list) and all(isinstance(t, dict) for t in many):
        return many
    one = got.get("tree")
    return [one] if isinstance(one, dict) else []


def spawn_request(req: StartRequest, prompt: str, contract: str | None) -> dict[str, Any]:
    """The satellite's `spawn` request: what it needs, and each option only when given."""
    spawn: dict[str, Any] = {
        "id": req.worker,
        "line": req.line,
        "prompt": prompt,
        "env": req.env_additions(),
    }
    spawn["size"] = list(req.size)
    if req.mcp:  # the host wires `looop mcp --worker` into the CLI's MCP config (mcpwire.py)
        spawn["mcp"] = True
    template, conv, find = req.resumable
    for key, value in (
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
    spawn["bounds"] = dict(req.bounds)  # bounded there as here (remote/bounds.py)
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
        dir=reg.record_file(data, str(row.get("id"))),
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
        try:
            return self.link.call(op, {"id": sid, **req})
        except Unreachable:
            raise
        except HostError as e:
            raise SessionError(str(e)) from e

    def start(self, spec: StartSpec) -> Session:

        req = StartRequest(
            worker=spec.sid,
            brief="",
            runner=spec.env.get("LOOOP_RUNNER", ""),
            line=shlex.join(spec.argv),
            bounds=bounds.sent(self.ctx.knobs()),
            size=spec.size,
        )
        return start_remote(self.ctx, self.host, req, "")[0]

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
        return self._newer("resize", sid, cols=cols, rows=rows)

    def detach(self, sid: str) -> dict[str, Any]:
        return self._newer("detach", sid)

    def _newer(self, op: str, sid: str, **req: Any) -> dict[str, Any]:
        """A request older satellites do not know: theirs refused naming the way out."""
        try:
            return self._call(op, sid, **req)
        except SessionError as e:
            if f"unknown satellite verb {op!r}" not in str(e):
                raise
            raise Refused(
                f"host {self.host}'s looop is older than this one and cannot {op} a worker — "
                f"`looop host install {self.host}`"
            ) from None

    def diff(self, sid: str) -> dict[str, Any]:
        """Read on its host, where its checkouts are (the satellite's workers/change)."""
        return far_diff(self._newer("diff", sid), sid, f"host {self.host}")

    def review(self, sid: str) -> dict[str, Any]:
        """Read on its host with this home's rounds, verify and proposal (farreview.py), as
        `looop review` reads it; what the host says against it is its one line."""
        try:
            return far_review(self.ctx, sid, self.host).to_json()
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


def _ls(lk: Link) -> list[dict[str, Any]] | None:
    """The host's workers, or None when it does not answer."""
    try:
        got = lk.call("ls", {}, timeout=LS_TIMEOUT_S)
    except HostError:
        return None
    rows = got.get("workers")
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else None


def ssh_records(data: Path) -> dict[str, dict[str, Any]]:
    """The home's records of workers on hosts that are not Kubernetes hosts (an SSH host, or
    one no longer registered)."""
    kinds: dict[str, str | None] = {}
    out: dict[str, dict[str, Any]] = {}
    for wid, rec in reg.records(data).items():
        name = rec["host"]
        if name not in kinds:
            kinds[name] = reg.host_kind(data, name)
        if kinds[name] != reg.K8S:
            out[wid] = rec
    return out


def remote_rows(
    data: Path,
    clock: Clock,
    stuck_secs: int,
    waiting: set[str],
    env: dict[str, str] | None = None,
    bin: str | None = None,
) -> list[dict[str, Any]]:
    """Fleet rows for workers on SSH hosts (the shape workers/fleet.worker_rows gives), each
    host asked once, all at once; a silent host's workers read `unreachable`, alive.
    remote/engine.py adds the Kubernetes hosts' rows."""

    recs = ssh_records(data)
    if not recs:
        return []
    wanted = sorted({r["host"] for r in recs.values() if not r.get("over")})
    links = {}
    for name in wanted:
        try:
            h = reg.get(data, name)
        except HostError:
            continue
        lk = link_at(data, h)
        links[name] = Link(data, h, env, bin or lk.bin) if env is not None else lk
    with concurrent.futures.ThreadPoolExecutor(max(1, len(links))) as pool:
        answers = dict(zip(links, pool.map(_ls, links.values()), strict=True))
    out: list[dict[str, Any]] = []
    for wid, rec in recs.items():
        host = rec["host"]
        listing = answers.get(host)
        row: dict[str, Any] | None = None
        if listing is not None:
            row = next((r for r in listing if r.get("id") == wid), None)
            if row is None or not row.get("alive"):
                reg.mark_over(data, wid, (row or {}).get("exit_code"), _how_ended(row))
                keep_limit(data, wid, row)
        if row is None and not rec.get("over") and host in links and listing is None:
            out.append(base_row(wid, host, rec, "unreachable", True, None, None))
            continue
        if row is None:
            rec = reg.record(data, wid) or rec
            out.append(base_row(wid, host, rec, "exited", False, rec.get("exit_code"), None))
            continue
        out.append(_far_row(wid, host, rec, row, clock, (waiting, stuck_secs)))
    return out


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
    # age taken from our now: never its wall clock against ours (an older satellite
    # sends only its output.log's time; that stands, but judges no one stuck).
    quiet = untrusted.age(row.get("quiet_s"))
    if quiet is not None:
        last: float | None = now - quiet
    else:
        last = untrusted.moment(row.get("last_output_unix"), now)
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


def _how_ended(row: dict[str, Any] | None) -> str:
    """How an ended worker ended, from its host's row: exited or killed as it says; still
    said running or starting once over, its supervisor died there (killed, as at home)."""
    said = (row or {}).get("state")
    return "killed" if said in ("killed", "running", "starting", "dead") else "exited"


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


def forward(ctx: Ctx, sid: str, argv: list[str], tty: bool = False) -> int | None:
    """Run a human session verb on the worker's host when the worker is remote (its exit
    code); None when it is not a remote worker."""
    host = reg.host_of(ctx.paths.data, sid)
    if host is None:
        return None
    return link(ctx, host).passthrough(argv, tty=tty)
