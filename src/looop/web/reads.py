"""The read side of the API: each function is one endpoint's JSON, built by the same functions
the CLI verbs print (`status --json`, `ls --json`, `shot --format json`, `journal --json`, `runs`,
`cost`, `asks`, `schedule list`). Never the config's env or a runner's command: no secrets.
Its refusals, and the actions', are a WebError: an HTTP status and one line; why a worker
could not be reached (workers/errors.py, whatever engine runs it) is turned into one by
REACH_CODES."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from looop.act.journal import journal_row
from looop.act.landaway import change_of
from looop.act.moves import far as reach_far
from looop.core.context import Ctx
from looop.home import jsonio, store
from looop.home.errors import LooopError
from looop.home.sessionfiles import attempts_of, list_light
from looop.human import schedules
from looop.human.mailbox import pending
from looop.loop.asks import tag
from looop.loop.beat import list_runs, show_run
from looop.remote.fleet import fleet_rows, remote_rows
from looop.sessions.state import SessionError, validate_id
from looop.spend.report import DAY_SPLIT, reports_at, window
from looop.spend.savings import savings_view
from looop.views.beatlog import BEAT_ENDS, beat_detail, ends_beat
from looop.views.needs import needs_at
from looop.views.status import gather_status_at
from looop.workers import attempts
from looop.workers.errors import HostUnreachable, NoSuchWorker, Refused, Unreached, WorkerOver
from looop.workers.treerecord import read_gitdir

if TYPE_CHECKING:
    from looop.home.sessionfiles import Listing
    from looop.spend.days import Held
    from looop.workers.backend import Backend

T = TypeVar("T")


class WebError(Exception):
    def __init__(self, status: int, message: str, more: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = " ".join(message.split())  # one line, whatever the cause said
        self.more = more or {}  # fields beside "error" a page can act on (a land's conflict)


LISTED = "GET /api/v1/sessions?all=1 lists them"
BACK = "it is not taken for dead; try again once the host is back"

# Why a worker could not be reached, first match wins: its status and its line (sid, why).
REACH_CODES: tuple[tuple[type[BaseException], int, Callable[[str, str], str]], ...] = (
    (NoSuchWorker, 404, lambda sid, why: f"no worker '{sid}' — {LISTED}"),
    (WorkerOver, 409, lambda sid, why: why),
    (HostUnreachable, 503, lambda sid, why: f"worker {sid} is unreachable: {why} — {BACK}"),
    (Refused, 409, lambda sid, why: why),
    (SessionError, 409, lambda sid, why: why),  # any other refusal the session said
    # anything else an engine raised is its host not answering, never a 500
    (LooopError, 503, lambda sid, why: f"worker {sid} is unreachable: {why} — {BACK}"),
    (OSError, 503, lambda sid, why: f"worker {sid} is unreachable: {why} — {BACK}"),
)


def unreached(sid: str, e: BaseException) -> WebError:
    """`e`, raised reaching worker `sid`, as the request's answer (REACH_CODES)."""
    for kind, status, say in REACH_CODES:
        if isinstance(e, kind):
            return WebError(status, say(sid, str(e)))
    raise e


def refused(sid: str, e: LooopError) -> WebError:
    """A worker's action refused: not reached, by its kind (REACH_CODES); any other refusal
    is the state's, 409."""
    return unreached(sid, e) if isinstance(e, Unreached) else WebError(409, str(e))


def reaching(sid: str, fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` on worker `sid`'s backend, what stops it answered by REACH_CODES."""
    try:
        return fn(*args)
    except (LooopError, OSError) as e:
        raise unreached(sid, e) from None


MAX_LINES = 2000  # the most journal/log lines one call returns
MAX_RUN_OUTPUT = 256 << 10  # a run's output is shown from its end past this


def _clamp(n: int, top: int) -> int:
    """A count from a query, held to 1..top."""
    return min(max(n, 1), top)


def state(ctx: Ctx, all_workers: bool = False, light: Listing | None = None) -> dict[str, Any]:
    """`looop status --json`: pulse, last beat and how it ended, next beat, breakers, spend;
    its workers the live ones only unless `all_workers` (finished ones pile up over days);
    `light`: the sessions' listing when the caller read it (the web's kept fleet read)."""
    data, config = os.fspath(ctx.paths.data), os.fspath(ctx.paths.config)
    return dict(gather_status_at(data, config, ctx.env, ctx.clock, all_workers, light))


MAX_GOAL = 16 << 10  # a goal's text shown whole below this


def goals(ctx: Ctx, most: int = MAX_GOAL) -> list[dict[str, Any]]:
    """goals/*.md (the archive left out), each with its text (cut past `most` bytes), newest
    change first."""
    out: list[dict[str, Any]] = []
    try:
        files = [p for p in ctx.paths.goals.iterdir() if p.suffix == ".md" and p.is_file()]
    except OSError:
        return out
    for p in files:
        try:
            raw = store.read_regular(p, most)
            mtime = p.stat().st_mtime
        except OSError:
            continue
        text = raw[:most].decode("utf-8", "replace")
        out.append({"id": p.stem, "text": text, "cut": len(raw) > most, "mtime": int(mtime)})
    return sorted(out, key=lambda g: (-g["mtime"], g["id"]))


def diff(ctx: Ctx, sid: str) -> dict[str, Any]:
    """`looop worker diff ID` for a worker started with --repo: its commits since its base,
    its edits and new files, read by its Backend where its checkouts are (here, or its host);
    one it cannot read says why by its kind (REACH_CODES)."""
    return reaching(sid, way(ctx, sid).diff, sid)


def sessions(
    ctx: Ctx, every: bool, spend: dict[str, float] | None = None, light: Listing | None = None
) -> list[dict[str, Any]]:
    """`looop ls --json` rows (`every`: finished workers too), each with its git branch and
    today's spend (`spend`: today's spend by worker when the caller kept it, spend_by_worker's
    answer; `light`: the home's listing when the caller read it, views/fleet.fleet_rows_at)."""
    light = list_light(os.fspath(ctx.paths.data), not every) if light is None else light
    rows = fleet_rows(ctx, every, light)  # plain JSON values already: no encode round trip
    spend = spend_by_worker(ctx) if spend is None else spend
    cwds, heads = {s["id"]: s["cwd"] for s in light}, dict[str | None, str | None]()
    for r in rows:
        if r.get("branch") is None:  # a worker not started with --repo, or the pulse
            cwd = cwds.get(r["id"])  # a folder workers share read once
            r["branch"] = heads[cwd] if cwd in heads else heads.setdefault(cwd, _branch(cwd))
        r["cost_today_usd"] = spend.get(str(r["id"]))
    return rows


def spend_by_worker(ctx: Ctx) -> dict[str, float]:
    """Today's spend by worker id, from the day totals."""
    try:
        (rep,) = reports_at(str(ctx.paths.data), ctx.clock, [("today", "worker")])
    except LooopError:
        return {}
    return {g["key"]: g["usd"] for g in rep["groups"]}


def _branch(cwd: str | None) -> str | None:
    """The git branch checked out where a session runs (`cwd`: its meta's), read from
    .git/HEAD without running git."""
    if not cwd:
        return None
    d = Path(cwd)
    for here in (d, *d.parents):
        git = here / ".git"  # a folder, or a worktree's file: "gitdir: <path>"
        gitdir = str(git) if git.is_dir() else read_gitdir(str(here))
        if gitdir is None:
            continue
        head = Path(gitdir) / "HEAD"
        try:
            # a ref is one short line; the worker can point its `.git` file at any file
            ref = store.read_regular(head, 256)[:256].decode("utf-8", "replace").strip()
        except OSError:
            return None
        return ref.removeprefix("ref: refs/heads/") if ref.startswith("ref:") else ref[:12]
    return None


def worker_review(ctx: Ctx, sid: str) -> dict[str, Any]:
    """A repo worker's change: commits, files with hunks, verify, summary, comment rounds,
    read by its Backend where its checkouts are (here, its SSH host or its pod); a group's
    attempts side by side (`looop review ID`'s table)."""
    if attempts_of(str(ctx.paths.data), sid):
        seen = attempts.rows(ctx, sid, lambda a: change_of(ctx, a).review(), remote_rows)
        return {"v": 1, "attempts": seen}
    return reaching(sid, lambda s: way(ctx, s).review(s).to_json(), sid)


def session_id(raw: str) -> str:
    try:
        return validate_id(raw)
    except SessionError:
        raise WebError(404, f"no worker '{raw[:80]}' — {LISTED}") from None


def way(ctx: Ctx, sid: str) -> Backend:
    """The backend that drives worker `sid`, wherever it runs (act/moves/far.backend_for):
    every read and action of a worker goes through it, and why one could not be done is
    answered by its kind (REACH_CODES)."""
    sid = session_id(sid)
    return reaching(sid, reach_far.backend_for, ctx, sid)


def screen(ctx: Ctx, sid: str, ask_alive: bool = True) -> dict[str, Any]:
    """The session's screen as the sessions room renders it (`looop shot --format json`),
    regrouped into runs of one style per row: what a browser paints as spans. `ask_alive`
    False spares a far worker's host the question (a stream asks it every few looks only)
    and reads it as alive."""
    b = way(ctx, sid)
    reach = reaching(sid, b.look, sid) if ask_alive else "alive"
    if reach == "unreachable":
        raise unreached(sid, HostUnreachable("its host does not answer"))
    shot = reaching(sid, b.screen, sid, "json", False)
    return {k: v for k, v in shot.items() if k != "cells"} | {
        "lines": _runs(shot),
        "alive": reach == "alive",
    }


_STYLE = ("fg", "bg", "bold", "italic", "underline", "inverse")


def _runs(shot: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """[[{"t": text, style…}, …] per row]: cells of one style merged, gaps filled with spaces."""
    rows: list[list[dict[str, Any]]] = [[] for _ in range(int(shot["rows"]))]
    by_row: dict[int, list[dict[str, Any]]] = {}
    for c in shot.get("cells") or []:
        by_row.setdefault(int(c["row"]), []).append(c)
    for y, cells in by_row.items():
        if not 0 <= y < len(rows):
            continue
        out = rows[y]
        col = 0
        for c in sorted(cells, key=lambda c: int(c["col"])):
            x = int(c["col"])
            if x > col:
                _put(out, " " * (x - col), {})
            style = {k: c[k] for k in _STYLE if k in c}
            _put(out, str(c["char"]), style)
            col = x + 1
    return rows


def _put(out: list[dict[str, Any]], text: str, style: dict[str, Any]) -> None:
    if out and {k: v for k, v in out[-1].items() if k != "t"} == style:
        out[-1]["t"] += text
    else:
        out.append({"t": text, **style})


def log(ctx: Ctx, sid: str, tail: int) -> dict[str, Any]:
    """The last `tail` lines of the worker's log, ANSI stripped (`looop log --tail N`)."""
    n = _clamp(tail, MAX_LINES)
    b = way(ctx, sid)
    return {"id": sid, "text": reaching(sid, b.tail, sid, n, False, None)}


def journal(ctx: Ctx, tail: int) -> list[dict[str, str | None]]:
    """`looop journal --json -n N`: {"at", "text", "line"} per line, oldest first."""
    return [journal_row(ln) for ln in store.tail_lines(ctx.paths.journal, _clamp(tail, MAX_LINES))]


def runs(ctx: Ctx, limit: int) -> list[dict[str, Any]]:
    return [dict(r) for r in list_runs(ctx, _clamp(limit, 200))]


def run(ctx: Ctx, run_id: str) -> dict[str, Any]:
    try:
        info: dict[str, Any] = dict(show_run(ctx, run_id))
    except LooopError:
        raise WebError(404, f"no run '{run_id[:80]}' — GET /api/v1/runs lists them") from None
    text = str(info.pop("output_text", ""))
    if len(text) > MAX_RUN_OUTPUT:
        text = text[-MAX_RUN_OUTPUT:]
    info["output_text"] = text
    try:  # the prompt the runner was given: the page shows it beside what came back
        raw = store.read_regular(Path(str(info.get("prompt"))), MAX_RUN_OUTPUT)
        info["prompt_text"] = raw.decode("utf-8", "replace")
    except OSError:
        info["prompt_text"] = None
    for k in ("prompt", "output"):  # paths on the server mean nothing to a browser
        info.pop(k, None)
    return info


def cost(ctx: Ctx, days: int, held: Held | None = None) -> dict[str, Any]:
    """Spend today by worker and by runner, and the last `days` local days (zeros filled in),
    each day's decides and workers apart (the chart stacks them): the window's days only.
    `held`: the server's kept day totals, caught up rather than loaded again."""
    n = _clamp(days, 366)
    span = window(n)
    try:
        by_worker, by_runner, by_day, split = reports_at(
            str(ctx.paths.data),
            ctx.clock,
            [("today", "worker"), ("today", "runner"), (span, "day"), (span, DAY_SPLIT)],
            held,
        )
    except LooopError as e:
        raise WebError(500, str(e)) from None
    today = date.fromisoformat(by_day["to"])
    spent = {g["key"]: g["usd"] for g in by_day["groups"]}
    part = {g["key"]: g["usd"] for g in split["groups"]}
    daily = [
        {"day": d, "usd": spent.get(d, 0.0)}
        | {k: part.get(f"{d} {k}", 0.0) for k in ("decides", "workers")}
        for d in ((today - timedelta(days=i)).isoformat() for i in range(n - 1, -1, -1))
    ]
    return {
        "today": by_worker["total"],
        "by_worker": by_worker["groups"],
        "by_runner": by_runner["groups"],
        "daily": daily,
        "corrupt_lines": by_day["corrupt_lines"],
        "savings": savings_view(str(ctx.paths.data), ctx.clock),
    }


def asks(ctx: Ctx) -> list[dict[str, Any]]:
    """`looop asks --json`: pending asks, LIVE (its worker waits) or STRANDED."""
    return [dict(r, status=tag(ctx, r)) for r in pending(ctx.paths.asks, ctx.paths.answers)]


def needs(ctx: Ctx, rows: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """`looop needs --json`: the needs-you queue (home/needs), each item with its answer;
    `rows`: the fleet's rows when the caller read them already (the web's kept read)."""
    return [n.as_json() for n in needs_at(str(ctx.paths.data), rows or fleet_rows(ctx, False))]


def schedule_rows(ctx: Ctx) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name, rec, why in schedules.load_all(ctx.paths.schedules):
        if rec is None:
            out.append({"name": name, "error": why})
            continue
        row: dict[str, Any] = {"name": name, "note": rec.get("note")}
        try:
            row["describe"] = schedules.describe(rec, ctx.clock)
            fires = schedules.first_fires(rec, ctx.clock, 1)
            row["next_ts"] = int(fires[0]) if fires else None
        except (LooopError, ValueError, KeyError, TypeError) as e:
            row["error"] = str(e)
        out.append(row)
    return out


BEATS_SCAN_LINES = 4000  # the events.jsonl lines read back to find the last beats


def beats(ctx: Ctx, limit: int) -> list[dict[str, Any]]:
    """The last beats, newest first: when each ended, how and why (status's own outcomes and
    words; a crash after a failure in the same beat is not a second end: views/beatlog)."""
    out: list[dict[str, Any]] = []
    outcome = ""  # how the beat read so far ended
    for line in store.tail_lines(ctx.paths.events, BEATS_SCAN_LINES):
        try:
            r = jsonio.loads(line)
        except ValueError:
            continue
        ev = r.get("event") if isinstance(r, dict) else None
        if ev == "tick_start":
            outcome = ""
        elif isinstance(ev, str) and ends_beat(ev, outcome):
            outcome = BEAT_ENDS[ev]
            why = beat_detail(r, ctx.clock) or ev.replace("_", " ")
            row = {"at": r.get("ts"), "outcome": outcome, "why": " ".join(why.split())[:300]}
            out.append(row | {"run_id": r.get("run_id")})
    return out[::-1][: _clamp(limit, 200)]
