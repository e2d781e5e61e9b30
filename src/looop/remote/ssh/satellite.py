"""The remote end: `looop satellite KEY OP` on a host, JSON in on stdin, JSON out on stdout.

Each home has its own satellite data dir on the host (`~/.local/share/looop/satellite/KEY`),
where the SAME PTY supervisors of `sessions/` run its workers; the home never parses human
output. Versioned: a request of another protocol is refused in one line."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from looop.core.context import Ctx
from looop.home.errors import LooopError
from looop.home.lastoutput import last_output
from looop.remote.ssh import farbounds
from looop.remote.ssh.link import PROTOCOL, SATELLITES
from looop.sessions import client
from looop.sessions.logs import offset_at, read_log
from looop.sessions.state import (
    Session,
    SessionError,
    get_session,
    list_sessions,
    validate_id,
    wait_code,
)
from looop.views.needsinput import HEALTH, refine
from looop.workers.needsinput import Looker

KEY_RE = re.compile(r"[0-9a-f]{16}")
RELAY = "relay.sock"
# A start's machinery (git, worktrees, srt: ~25-50 ms measured) serves these three
# (start.py): `ls` and the other per-verb satellites load none of it.
START_VERBS = ("hello", "spawn", "verify")
# A far worker's review, its round's resume and its landing (act/landthere.py), likewise.
THERE_VERBS = ("review", "resume", "land")
# A worker's diff (git) is read by start.py too (workers/review.py).
CHANGE_VERBS = ("diff",)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from looop.home.clock import Clock

    Verbs = Callable[[Ctx, Path, str, dict[str, Any], str], dict[str, Any]]


def satellite_dir(env: dict[str, str], key: str) -> Path:
    if not KEY_RE.fullmatch(key):
        raise LooopError(f"bad satellite key {key!r} (16 hex digits)")
    home = env.get("HOME", "")
    if not home.startswith("/"):
        raise LooopError("HOME is not set on this host: the satellite has nowhere to live")
    return Path(home) / SATELLITES / key


def worker_row(root: Path, s: Session, clock: Clock, waits: str | None = None) -> dict[str, Any]:
    """A worker as the home's `ls` reads it. How long it has been quiet is measured here, on
    this host's monotonic clock (its supervisor's log/output.last, home/lastoutput.py):
    `quiet_s` is an age, which the home takes from its own now, so neither a step of this
    host's wall clock nor its skew from the home's ever makes a worker stuck or hides one.
    `waits`: what its screen waits on, judged here (screen_waits)."""
    _, quiet = last_output(str(s.dir), s.alive, clock)
    return {
        "needs_input": waits,
        "limit": farbounds.limit_of(root, s),  # a bound it is at (the home names it)
        "id": s.id,
        "state": s.state,
        "alive": s.alive,
        "exit_code": wait_code(s) if not s.alive else None,
        "label": s.label,
        "note": s.note,
        "started_at": s.started_at,
        "last_change": s.last_change,
        "quiet_s": quiet if quiet is None or quiet >= 0.0 else None,
    }


def screen_waits(root: Path, listed: Sequence[Session], clock: Clock) -> dict[str, str]:
    """Live worker id -> what its screen waits on (`approval: …`, `idle: …`), judged here as
    the beat looks at home (a screen read only when its log changed), so the home learns it
    without reading screens over SSH; the CLIs' own patterns (a host has no home config)."""
    rows = [{"id": s.id, "alive": True, "health": "busy"} for s in listed if s.alive]
    if not rows:
        return {}
    dirs = {s.id: {"dir": str(s.dir), "started_at": s.started_at} for s in listed}
    refine(str(root), rows, dirs, clock, None, Looker())
    return {str(r["id"]): str(r["needs_input"]) for r in rows if r["health"] == HEALTH}


def handle(
    ctx: Ctx, op: str, req: dict[str, Any], version: str, verbs: Verbs | None = None
) -> dict[str, Any]:
    """One verb's answer; `verbs` serves it (start.start_verb for START_VERBS, which the
    satellite process of such a verb loads), else this module's own."""
    if req.get("v") != PROTOCOL:
        return {"error": f"this host's looop {version} speaks satellite protocol {PROTOCOL}"}
    root = ctx.paths.data
    try:
        return (verbs or _handle)(ctx, root, op, req, version)
    except (SessionError, LooopError) as e:
        return {"error": str(e)}


def worker_id(req: dict[str, Any]) -> str:
    sid = req.get("id")
    if not isinstance(sid, str):
        raise LooopError("the request names no worker id")
    return validate_id(sid)


def _handle(ctx: Ctx, root: Path, op: str, req: dict[str, Any], version: str) -> dict[str, Any]:
    if op == "ls":
        listed = list_sessions(root)
        waits = screen_waits(root, listed, ctx.clock)
        return {"workers": [worker_row(root, s, ctx.clock, waits.get(s.id)) for s in listed]}
    if op == "bounds":
        return farbounds.check(ctx, req)
    sid = worker_id(req)
    if op == "pause":
        return farbounds.pause(root, sid)
    if op == "go_on":
        return farbounds.go_on(root, sid)
    if op == "reach":
        try:
            s = get_session(root, sid)
        except SessionError:
            return {"reach": "over", "exit_code": None}
        return {"reach": "alive" if s.alive else "over", "exit_code": wait_code(s)}
    if op == "screen":
        return client.screenshot(root, sid, str(req.get("format", "plain")), bool(req.get("trim")))
    if op == "log":
        text, off = read_log(root, sid, int(req.get("since", 0)), bool(req.get("raw")))
        return {"text": text, "offset": off}
    if op == "offset_at":
        when = req.get("when")
        if not isinstance(when, int | float):
            raise LooopError("offset_at needs a time `when` (seconds since the epoch)")
        return {"offset": offset_at(root, sid, float(when))}
    if op == "send":
        return client.send(root, sid, str(req.get("text", "")), bool(req.get("newline")))
    if op == "key":
        names = req.get("names")
        return client.send_keys(root, sid, [str(n) for n in names or []])
    if op == "kill":
        try:
            return client.kill(root, sid)
        except SessionError:
            return {"killed": False}
    if op == "restart":
        return client.restart(root, sid)
    if op == "resize":
        cols, rows = req.get("cols"), req.get("rows")
        if not isinstance(cols, int) or not isinstance(rows, int):
            raise LooopError("resize needs whole numbers `cols` and `rows`")
        return client.resize(root, sid, cols, rows)
    if op == "detach":
        return client.detach(root, sid)
    if op == "wait":
        t = req.get("timeout")
        return {"code": client.wait(root, sid, float(t) if t is not None else None, ctx.clock)}
    raise LooopError(f"unknown satellite verb {op!r}")
