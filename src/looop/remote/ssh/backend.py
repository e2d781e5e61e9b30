"""Remote workers as the home drives them: start, the `Backend` face, fleet rows, and the
human verbs forwarded to the host's satellite.

The home keeps one record per remote worker (`hosts/workers/<id>.json`: its host; over or
not). The host is asked, never guessed: a host that does not answer makes its workers
`unreachable` — not dead, nothing reaped — until it answers again."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from looop.core.context import Ctx
from looop.home import store
from looop.remote import bounds, untrusted
from looop.remote import hosts as reg
from looop.remote.hosts import HostError
from looop.remote.repospec import is_host_path
from looop.remote.ssh.farreview import far_review
from looop.remote.ssh.link import OP_TIMEOUT_S, Unreachable, link
from looop.sessions.state import Session, SessionError
from looop.workers.backend import Reach, StartSpec, T, Ways
from looop.workers.errors import ChangeError, Refused
from looop.workers.polled import Polled
from looop.workers.resume import encode_sandbox
from looop.workers.review import far_diff
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
        """Read on its host, where its checkouts are (the satellite's workers/review)."""
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


def forward(ctx: Ctx, sid: str, argv: list[str], tty: bool = False) -> int | None:
    """Run a human session verb on the worker's host when the worker is remote (its exit
    code); None when it is not a remote worker."""
    host = reg.host_of(ctx.paths.data, sid)
    if host is None:
        return None
    return link(ctx, host).passthrough(argv, tty=tty)
