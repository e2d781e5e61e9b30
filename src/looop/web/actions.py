"""The write side of the API: every action goes the way the CLI verb goes — a typed decision
through the executor (kill, send, keys, goal), the mailbox (answer, tell), the daemon (pause =
`looop down --keep-workers`, resume = `looop up`) — and is journaled as done by "web" (or the
caller's `actor`: "mcp"). A worker's review is answered as the CLI answers it: a comment
drafted (`looop review --comment`), the round sent (`--send`), the change landed (`looop land`,
a human's action journaled as approved from the web or `watch`), each where its Backend has it
(act/landaway.py). Every check runs before anything is written, so a refused request leaves
no trace."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from looop.act import roundsend
from looop.act.decision import Decision, DecisionError, Mover
from looop.act.executor import execute
from looop.act.journal import append_journal
from looop.act.landaway import change_of
from looop.act.landing import Approved, LandConflict, LandRequest, land
from looop.act.moves.far import continue_worker
from looop.act.moves.sessions import read_typed
from looop.act.outcome import ExecError
from looop.act.parse import decision_from_obj
from looop.core.context import Ctx
from looop.core.text import one_line
from looop.home import jsonio
from looop.home.errors import LooopError
from looop.human import mailbox
from looop.human.mailbox import AskError, answer
from looop.human.tellbox import check_worker, new_tell
from looop.loop.daemon import start_detached, stop_all
from looop.loop.ended import clear_stall
from looop.remote.ssh.link import Unreachable
from looop.seed import ensure_data_dir
from looop.spend.statusspend import start_refused
from looop.web.reads import WebError, reaching, refused, session_id, unreached, way
from looop.workers.backend import live
from looop.workers.errors import HostUnreachable

if TYPE_CHECKING:
    from looop.workers.backend import Backend, Reach

T = TypeVar("T")
ACTOR = "web"
MODES = ("ff", "merge", "pr")  # how a change lands
MAX_TEXT = 16 << 10  # one answer, tell, goal or typed text
MAX_JOURNAL_TEXT = 2000  # typed text kept in its journal line (one line, whole unless huge)
# why an answer is refused, by its kind: (kind, status, the line for the ask's id; "": its own)
ASK_REFUSED: tuple[tuple[type[AskError], int, str], ...] = (
    (mailbox.AskAnswered, 409, "ask '{}' is already answered"),
    (mailbox.AskArchived, 409, "ask '{}' was answered and is gone from the pending list"),
    (mailbox.NoSuchAsk, 404, "no ask '{}' — GET /api/v1/asks lists the pending ones"),
    (mailbox.NotAnOption, 400, ""),
)


def _text(body: dict[str, Any], key: str, *, required: bool = True) -> str:
    v = body.get(key)
    if v is None and not required:
        return ""
    if not isinstance(v, str):
        raise WebError(400, f"field '{key}' must be a string")
    if len(v) > MAX_TEXT:
        raise WebError(413, f"field '{key}' is over {MAX_TEXT} characters")
    if required and not v.strip():
        raise WebError(400, f"field '{key}' is empty")
    return v


def _journal(ctx: Ctx, text: str, actor: str = ACTOR) -> str:
    return append_journal(ctx, ctx.knobs(), f"{actor}: {text}")


def _steer(
    ctx: Ctx, obj: dict[str, Any], actor: str = ACTOR, said: str | None = None
) -> dict[str, Any]:
    """One decision through the pulse's own executor, as `looop kill`/`goal write` run it.
    `said`: the journal line's text when the summary alone would lose what was typed."""

    try:
        parsed = decision_from_obj(obj)
        # the journal line names the move as the executor summarises it
        journal = f"{actor}: {said or parsed.action.summary()}"
        decision = Decision(parsed.action, journal, parsed.next_interval_s)
    except (DecisionError, LooopError) as e:
        raise WebError(400, str(e)) from None
    ensure_data_dir(ctx.paths)
    try:
        done = execute(ctx, ctx.knobs(), decision, actor=actor)
    except ExecError as e:
        raise WebError(409, str(e)) from None
    except LooopError as e:  # a remote worker's host stopped answering meanwhile
        raise WebError(503, str(e)) from None
    return {"ok": True, "kind": done.kind, "journal": done.journal}


def _or_409(fn: Callable[[], T]) -> T:
    """fn(), a LooopError it raises the state's refusal (409)."""
    try:
        return fn()
    except LooopError as e:
        raise WebError(409, str(e)) from None


def _way(ctx: Ctx, sid: str) -> Backend:
    """The backend of worker `sid` (web/reads.way); 404 for the pulse or a bad id."""
    if sid == "pulse":
        raise WebError(404, "the pulse is not a worker — pause and resume it instead")
    return way(ctx, sid)


def _reach(ctx: Ctx, sid: str) -> Reach:
    """alive, over or unreachable (a far worker's host that does not answer), as its
    backend says; 404 for no worker by that id."""
    return reaching(sid, _way(ctx, sid).look, sid)


def _live(ctx: Ctx, sid: str) -> None:
    """Nothing when the worker runs and its host answers; else the answer why not."""
    reaching(sid, live, _way(ctx, sid), sid)


def unstall(ctx: Ctx, sid: str, body: dict[str, Any], actor: str = ACTOR) -> dict[str, Any]:
    """`looop worker unstall ID`: a human clears a stalled worker (never MCP's: an agent)."""
    del body  # nothing to say but the id
    session_id(sid)
    rec = _or_409(lambda: clear_stall(ctx, ctx.knobs(), sid, actor))
    return {"ok": True, "was": rec.get("why")}


def go_on(ctx: Ctx, sid: str, body: dict[str, Any], actor: str = ACTOR) -> dict[str, Any]:
    """`looop worker continue ID [--budget USD]`: a worker at its budget goes on."""
    del actor  # the budget file says the ceiling; nothing is journaled, as on the CLI
    session_id(sid)
    budget = body.get("budget_usd")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int | float)):
        raise WebError(400, '"budget_usd" must be a number of USD (e.g. 5), or left out')
    said = _or_409(lambda: continue_worker(ctx, sid, None if budget is None else float(budget)))
    return {"ok": True, "said": said}


def answer_ask(ctx: Ctx, ask_id: str, body: dict[str, Any], actor: str = ACTOR) -> dict[str, Any]:
    """`looop answer ID TEXT`: bound to this ask; its --options enforced (never forced)."""
    text = _text(body, "answer").rstrip("\n")
    p = ctx.paths
    try:
        check_worker(ask_id, "ask id")
    except AskError:
        raise WebError(404, f"no ask '{ask_id[:80]}'") from None
    try:
        answer(p.asks, p.answers, ask_id, text, ctx.clock.now(), False)
    except AskError as e:  # by its kind (ASK_REFUSED); any other refusal the state's, 409
        status, said = next(((s, w) for k, s, w in ASK_REFUSED if isinstance(e, k)), (409, ""))
        raise WebError(status, said.format(ask_id) if said else str(e)) from None
    ctx.events.record("answer", id=ask_id, actor=actor, line=f"{actor}: answered {ask_id}: {text}")
    return {"ok": True, "id": ask_id, "answer": text}


def tell(ctx: Ctx, sid: str, body: dict[str, Any], actor: str = ACTOR) -> dict[str, Any]:
    """`looop tell WORKER MSG`: queued at home for a live worker's next `looop told` (a
    remote worker's comes home through its host's relay, so one whose host does not answer
    now is told once it does)."""
    msg = _text(body, "message")
    if _reach(ctx, sid) == "over":  # a host out of reach keeps its worker: told once back
        raise WebError(409, f"worker {sid} is not running")
    try:
        tid = new_tell(ctx.paths.tells, sid, msg, ctx.clock.now())
    except AskError as e:
        raise WebError(400, str(e)) from None
    ctx.events.record("tell", id=tid, worker=sid, actor=actor)
    _journal(ctx, f"told {sid}: {msg}", actor)
    return {"ok": True, "id": tid}


def send_text(ctx: Ctx, sid: str, body: dict[str, Any], actor: str = ACTOR) -> dict[str, Any]:
    """Type text into a worker: with Enter it is the executor's steer_session (as `looop send`
    presses it); without, `looop send -n` (the session client, journaled here)."""
    text = _text(body, "text", required=False)
    enter = body.get("enter", True)
    if not isinstance(enter, bool):
        raise WebError(400, "field 'enter' must be true or false")
    _live(ctx, sid)
    if enter:
        # what was typed is journaled with it, as the human's own words
        said = f"steer {sid} · {one_line(text, MAX_JOURNAL_TEXT)}" if text else None
        obj = {"action": "steer_session", "id": sid, "input": text}
        return _steer(ctx, obj, actor, said)
    if not text:
        raise WebError(400, "field 'text' is empty (and no Enter to press)")
    try:  # an agent's half line meets its Enter later: read now what it would run
        read_typed(
            Mover(ctx, ctx.knobs(), actor), sid, text, way(ctx, sid).kind != "local", "send_line"
        )
    except ExecError as e:
        raise WebError(409, str(e)) from None
    reaching(sid, way(ctx, sid).send, sid, text, False)
    ctx.events.record("steered", actor=actor, action="send", summary=f"typed into {sid}")
    _journal(ctx, f"typed into {sid} · {one_line(text, MAX_JOURNAL_TEXT)}", actor)
    return {"ok": True}


def send_keys(ctx: Ctx, sid: str, body: dict[str, Any], actor: str = ACTOR) -> dict[str, Any]:
    keys = body.get("keys")
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
        raise WebError(400, "field 'keys' must be a non-empty list of key names")
    _live(ctx, sid)
    return _steer(ctx, {"action": "send_key", "id": sid, "keys": keys}, actor)


def kill(ctx: Ctx, sid: str, body: dict[str, Any], actor: str = ACTOR) -> dict[str, Any]:
    reason = _text(body, "reason", required=False)
    if _reach(ctx, sid) == "unreachable":  # nothing reaches it to stop it
        raise unreached(sid, HostUnreachable("its host does not answer"))
    return _steer(ctx, {"action": "kill_worker", "id": sid, "reason": reason}, actor)


def write_goal(ctx: Ctx, goal_id: str, body: dict[str, Any], actor: str = ACTOR) -> dict[str, Any]:
    text = _text(body, "body")
    return _steer(ctx, {"action": "write_goal", "id": goal_id, "body": text}, actor)


def pause(ctx: Ctx, actor: str = ACTOR) -> dict[str, Any]:
    """`looop down --keep-workers`: the pulse stops after its beat; workers keep running."""
    res = _or_409(lambda: stop_all(ctx, keep_workers=True))
    if not res.was_running:
        raise WebError(409, "the pulse is not running")
    ctx.events.record("steered", actor=actor, action="pause", summary="paused the pulse")
    _journal(ctx, "paused the pulse (workers keep running)", actor)
    return {"ok": True, "pid": res.pid, "forced": res.forced}


def resume(ctx: Ctx, actor: str = ACTOR) -> dict[str, Any]:
    """`looop up`: start the pulse in the background (idempotent: 409 when it runs)."""
    res = _or_409(lambda: start_detached(ctx))
    if not res.started:
        raise WebError(409, f"the pulse is already running (pid {res.pid})")
    ctx.events.record("steered", actor=actor, action="resume", summary="resumed the pulse")
    _journal(ctx, "resumed the pulse", actor)
    return {"ok": True, "pid": res.pid}


def start_worker(
    ctx: Ctx, worker_id: str, body: dict[str, Any], actor: str = ACTOR
) -> dict[str, Any]:
    """`looop worker start ID PROMPT [--runner R] [--repo PATH …] [--budget USD] [--on-budget
    P]`: the same start_worker move through the executor. A repo is a path on this machine
    (absolute: the page stands nowhere) or a URL; a list of them, one task across several."""
    obj: dict[str, Any] = {
        "action": "start_worker",
        "id": worker_id,
        "prompt": _text(body, "prompt"),
    }
    several = body.get("repo")  # a list: one task across repositories (the move checks it)
    if isinstance(several, list) and all(isinstance(r, str) for r in several):
        obj["repo"] = [r.strip() for r in several]
    for key in ("runner", "repo", "branch", "host", "on_budget"):
        if key in obj:
            continue
        v = _text(body, key, required=False).strip()
        if v:
            obj[key] = v
    if body.get("budget_usd") is not None:  # `worker start --budget`: the decision checks it
        obj["budget_usd"] = body["budget_usd"]
    given = obj.get("repo", "/")
    for repo in given if isinstance(given, list) else [given]:
        # the page stands in no directory: a path is absolute (or ~), else a URL (git@host:path)
        url = "://" in repo or ":" in repo.split("/", 1)[0]
        if not (url or repo.startswith(("/", "~"))):
            raise WebError(400, f"field 'repo' must be an absolute path or a URL, not {repo!r}")
    _refuse_over_fleet_budget(ctx, worker_id, obj)
    # one that dies at once shows as such in the fleet (show all), with its exit code
    return _steer(ctx, obj, actor)


def _refuse_over_fleet_budget(ctx: Ctx, wid: str, obj: dict[str, Any]) -> None:
    """The daily budget refuses a new worker here as `looop worker start` does (409)."""

    def line() -> str | None:
        r = ctx.config().runner(obj.get("runner"))
        return r.worker if r is not None else None

    try:
        why = start_refused(ctx.knobs(), str(ctx.paths.data), ctx.clock, wid, line)
    except LooopError as e:  # a config that does not read: as the executor's start says it
        raise WebError(503, str(e)) from None
    if why is not None:
        raise WebError(409, why)


def comment(ctx: Ctx, sid: str, body: dict[str, Any], actor: str = ACTOR) -> dict[str, Any]:
    """{"text", "file"?, "line"?}: a comment on FILE:LINE at the branch's tip, or (no file) on
    the whole change, added to the draft round; nothing reaches the worker until sent."""
    sid = session_id(sid)
    text, path = _text(body, "text", required=False), _text(body, "file", required=False)
    line = body.get("line")
    if path and (isinstance(line, bool) or not isinstance(line, int) or line < 1):
        raise WebError(400, "field 'line' must be a line number (1 or more) with 'file'")
    if not path and line is not None:
        raise WebError(400, "field 'line' needs its 'file'")
    try:
        c = change_of(ctx, sid)  # here, on an SSH host or in a pod: the lines are read there
        c.has_change()  # no change to comment on: the state, not the request
    except LooopError as e:  # no such worker: 404, as its other routes answer
        raise refused(sid, e) from None
    on_lines = [(f"{path}:{line}", text)] if path else []
    on_all = [] if path else [text]
    try:
        rd = c.comment(on_lines, on_all)
    except Unreachable as e:
        raise unreached(sid, e) from None
    except LooopError as e:
        raise WebError(400, str(e)) from None
    return {"ok": True, "round": rd.n, "comments": len(rd.comments)}


def send(ctx: Ctx, sid: str, body: dict[str, Any], actor: str = ACTOR) -> dict[str, Any]:
    """The draft round as one message: told to a live worker, an ended one resumed first."""
    sid = session_id(sid)
    try:
        rd = roundsend.send(change_of(ctx, sid), ctx.knobs(), actor)
    except LooopError as e:  # its host away (503), no such worker (404), no draft (409)
        raise refused(sid, e) from None
    return {"ok": True, "round": rd.n, "comments": len(rd.comments), "how": rd.sent}


def land_change(ctx: Ctx, sid: str, body: dict[str, Any], actor: str = ACTOR) -> dict[str, Any]:
    """{"at": the tip shown (each repository's: {name: sha}), "mode"?: "ff"|"merge"|"pr",
    "into"?}: `looop land`, approved by the user from `actor`; a branch that moved since
    is refused (409). A conflict answers 409 with `conflict`: the comment to send back."""
    sid = session_id(sid)
    mode, into = _text(body, "mode", required=False), _text(body, "into", required=False)
    at = body.get("at")
    if mode and mode not in MODES:
        raise WebError(400, f"field 'mode' must be one of {', '.join(MODES)}, not {mode!r}")
    tips = {"": at} if isinstance(at, str) else at
    if (
        not isinstance(tips, dict)
        or not tips
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in tips.items())
    ):
        raise WebError(400, "field 'at' must be the tip the review showed ({name: tip} of several)")
    knobs, who = ctx.knobs(), f"user ({actor})"
    try:  # here, on an SSH host or in a pod: landed there
        c, ok = change_of(ctx, sid), Approved(tips)
        done = land(c, knobs, LandRequest(who, ok, mode or None, into or None))
    except LandConflict as e:
        raise WebError(409, str(e).split(" — ")[0], {"conflict": e.comment}) from None
    except LooopError as e:
        raise refused(sid, e) from None
    return {"ok": True, **jsonio.plain(done)}


class Acting:
    """These actions for another face (`looop watch`), journaled as `actor`: each returns a
    one-line "done" and raises LooopError with the refusal's one line."""

    def __init__(self, ctx: Ctx, actor: str) -> None:
        self.ctx, self.actor = ctx, actor

    def _do(self, fn: Any, *args: Any) -> dict[str, Any]:
        try:
            got: dict[str, Any] = fn(self.ctx, *args, actor=self.actor)
        except WebError as e:
            if "conflict" in e.more:  # a land's: the comment to send back goes with the line
                raise LandConflict(e.message, str(e.more["conflict"])) from None
            raise LooopError(e.message) from None
        return got

    def answer(self, ask_id: str, text: str) -> str:
        self._do(answer_ask, ask_id, {"answer": text})
        return f"answered {ask_id}: {one_line(text, 60)}"

    def send(self, sid: str, text: str) -> str:
        self._do(send_text, sid, {"text": text, "enter": True})
        return f"sent to {sid}: {one_line(text, 60)}"

    def keys(self, sid: str, keys: list[str]) -> str:
        self._do(send_keys, sid, {"keys": keys})
        return f"pressed {' '.join(keys)} in {sid}"

    def kill(self, sid: str) -> str:
        self._do(kill, sid, {"reason": f"killed from {self.actor}"})
        return f"killed {sid}"

    def pause(self) -> str:
        self._do(pause)
        return "pulse paused (workers keep running)"

    def resume(self) -> str:
        self._do(resume)
        return "pulse resumed"

    def comment(self, sid: str, file: str, line: int, text: str) -> str:
        got = self._do(comment, sid, {"text": text, "file": file, "line": line if file else None})
        return f"comment drafted on {sid} (round {got['round']}: {got['comments']}) — s sends"

    def send_review(self, sid: str) -> str:
        got = self._do(send, sid, {})
        return f"round {got['round']} sent to {sid}: {got['how']}"

    def land(self, sid: str, mode: str, at: dict[str, str]) -> str:
        done = self._do(land_change, sid, {"mode": mode, "at": at})
        if done["mode"] == "pr":
            return f"pushed {done['branch']} and opened a pull request: {done['url']}"
        return f"landed {sid} into {done['into']} at {str(done['commit'])[:12]}"
