"""A start on an account at its provider's usage limit is held as `scheduled`, not failed
(home/usagewindows keeps the windows and the held starts): the hold rule a start passes
before anything changes, and the start as asked written down and read back for the reset
(loop/windowwork makes it then)."""

from __future__ import annotations

from typing import Any

from looop.core.context import Ctx
from looop.home.errors import CorruptState
from looop.home.sandboxpolicy import parse_sandbox
from looop.spend import usagewindows
from looop.workers.errors import StartHeld, WorkerError
from looop.workers.started import StartRequest
from looop.workers.startrecord import encode_sandbox

_ASKED_TEXT = ("brief", "runner", "command", "verify", "repo", "branch", "host")
_ASKED_FLAGS = ("resume", "steerable", "decided")


def request_json(req: StartRequest) -> dict[str, Any]:
    """The start as asked (what launch works out again at the reset is left out)."""
    obj: dict[str, Any] = {"worker": req.worker}
    obj.update({k: getattr(req, k) for k in _ASKED_TEXT + _ASKED_FLAGS})
    obj["sandbox"] = None if req.sandbox is None else encode_sandbox(req.sandbox)
    if req.repos:
        obj["repos"] = list(req.repos)
    return obj


def request_from(obj: dict[str, Any]) -> StartRequest:
    """A held start read back; WorkerError (one line) when it is not what request_json wrote."""
    wid, brief = obj.get("worker"), obj.get("brief")

    def text(k: str) -> str | None:
        v = obj.get(k)
        if v is not None and not isinstance(v, str):
            raise ValueError(f"field '{k}' is not text")
        return v

    def flag(k: str) -> bool:
        v = obj.get(k)
        if not isinstance(v, bool):
            raise ValueError(f"field '{k}' is not true or false")
        return v

    try:
        if not isinstance(wid, str) or not isinstance(brief, str):
            raise ValueError("its id or brief")
        raw = obj.get("sandbox")
        repos = obj.get("repos", [])
        if not isinstance(repos, list) or not all(isinstance(r, str) for r in repos):
            raise ValueError("field 'repos' is not a list of paths")
        return StartRequest(
            repos=tuple(repos),
            worker=wid, brief=brief, runner=text("runner"), command=text("command"),
            verify=text("verify"), repo=text("repo"), branch=text("branch"), host=text("host"),
            sandbox=None if raw is None else parse_sandbox(raw, "sandbox"),
            resume=flag("resume"), steerable=flag("steerable"), decided=flag("decided"),
        )  # fmt: skip
    except ValueError as e:
        raise WorkerError(
            f"held start {wid!r} is unreadable ({str(e).split('|')[0]}) — start it again"
        ) from None


def hold_if_limited(ctx: Ctx, runner: str, line: str, req: StartRequest) -> None:
    """Raise StartHeld (the start kept for the reset) when the account this start would spend
    from is in a usage window; otherwise drop any start held under this id (a new ask replaces
    it). A corrupt windows file is said once and holds nothing."""
    data, now = str(ctx.paths.data), ctx.clock.now()
    acct = usagewindows.account_of(runner, line, ctx.env)
    try:
        w = usagewindows.in_force(usagewindows.read_windows(data), acct.key, now)
    except CorruptState as e:
        if ctx.first_time(str(e)):
            ctx.events.emit("warn", "worker.window", str(e))
        w = None
    if w is None:
        usagewindows.unhold(data, req.worker)
        return
    reason = usagewindows.hold(data, req.worker, w, request_json(req), now)
    until = ctx.clock.offset_stamp_at(w.until)
    ctx.events.record("worker_held", id=req.worker, runner=runner, until=int(w.until))
    raise StartHeld(
        f"held as scheduled until {until}: {reason} — looop starts it at the reset "
        f"(`looop kill {req.worker}` drops it)"
    )
