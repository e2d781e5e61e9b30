"""The moves that drive a running worker: steer_session (a line typed in), send_key and
restart_session. A decision reaches no further than the decider may (act/reach.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

from looop.act import reach
from looop.act.decision import (
    DecisionError,
    Mover,
    OnWorker,
    req_str,
    set_field,
)
from looop.act.moves import far
from looop.act.outcome import ExecError
from looop.act.shellgate import shell_guard
from looop.core.text import one_line
from looop.workers.errors import WorkerError
from looop.workers.ids import normalise_target
from looop.workers.resume import exited_resumable, restart_worker, resume_worker

MAX_KEYS = 64


@dataclass(frozen=True)
class SteerSession(OnWorker):
    tag = "steer_session"
    kind = "steer"
    teach = r"""steer_session{id,input} - type one line into a worker to nudge or redirect it; one that has
exited is resumed on its own conversation, told the line first. Never use it to answer a
question meant for the human.
  {"action":"steer_session","id":"release-2-1","input":"Run the tests before pushing."}"""  # noqa: E501

    id: str
    input: str

    def summary(self) -> str:
        return f"steer {self.id}"

    def perform(self, by: Mover) -> str | None:
        ctx = by.ctx
        wid = normalise_target(self.id)
        way = far.backend_for(ctx, wid)
        read_typed(by, wid, self.input, way.kind != "local")
        if way.kind == "local" and exited_resumable(ctx, wid):  # its news reaches it anyway
            _resume_told(by, wid, self.input)
            return None
        # the text, then Enter (CR): raw-mode agent TUIs submit on Enter, a line-mode program
        # gets CR as NL. The session client presses Enter only once the text shows (an agent
        # TUI may read a CR that arrives in one read with the text as part of a paste)
        line = self.input + "\r"
        far.sessions_call("steer_session", lambda: way.send(wid, line, False))
        return None


def read_typed(by: Mover, wid: str, text: str, away: bool, what: str = "steer_session") -> None:
    """Text an agent (a decision, a human's agent over MCP) types into a session, read as a
    decision's before it goes in; a decision reaches no further than the decider (reach.py).
    Marks who typed last, for `looop land` run in the session."""
    if by.by_agent:
        if by.decided:
            got = reach.check_reach(by.ctx, by.cfg, what, wid, away)
        else:
            got = reach.session_reach(by.ctx, wid, away)
        for line in reach.typed_text(what, text):
            cwd = got.cwd if got is not None else None
            shell_guard(by, line, f"{what} input", cwd, waived=False)
        reach.check_recall(what, text, got)
    reach.note_typist(by.ctx, wid, by.actor if by.by_agent else None)


@dataclass(frozen=True)
class SendKey(OnWorker):
    tag = "send_key"
    kind = "key"
    teach = r"""send_key{id,keys} - named keys into a worker.
  {"action":"send_key","id":"release-2-1","keys":["C-c"]}"""

    id: str
    keys: tuple[str, ...]

    def __post_init__(self) -> None:
        super().__post_init__()
        keys = tuple(self.keys)
        if not keys or not all(isinstance(k, str) and k for k in keys):
            raise DecisionError("send_key: field 'keys' must be a non-empty list of strings")
        if len(keys) > MAX_KEYS or any(len(k) > 64 for k in keys):
            raise DecisionError(
                f"send_key: field 'keys' takes at most {MAX_KEYS} key names of up to 64 chars; "
                "type text with steer_session"
            )
        set_field(self, "keys", keys)

    @classmethod
    def parse(cls, obj: dict[str, Any]) -> Self:
        v = obj.get("keys")  # not a list: refused as an empty one is (__post_init__)
        return cls(id=req_str(cls.tag, obj, "id"), keys=tuple(v) if isinstance(v, list) else ())

    def summary(self) -> str:
        return f"key {self.id} · {one_line(' '.join(self.keys))}"

    def perform(self, by: Mover) -> str | None:
        ctx = by.ctx
        wid = normalise_target(self.id)
        way = far.backend_for(ctx, wid)
        if by.decided:
            got = reach.check_reach(ctx, by.cfg, "send_key", wid, way.kind != "local")
            reach.check_keys("send_key", wid, self.keys, got)
        keys = list(self.keys)
        far.sessions_call("send_key", lambda: way.key(wid, keys))
        return None


@dataclass(frozen=True)
class RestartSession(OnWorker):
    tag = "restart_session"
    kind = "restart"
    teach = r"""restart_session{id} - restart a worker's command (a resumable one on its own conversation).
  {"action":"restart_session","id":"release-2-1"}"""  # noqa: E501

    def summary(self) -> str:
        return f"restart {self.id}"

    def perform(self, by: Mover) -> str | None:
        ctx = by.ctx
        wid = normalise_target(self.id)
        way = far.backend_for(ctx, wid)
        if by.decided:
            reach.check_reach(ctx, by.cfg, "restart_session", wid, way.kind != "local")
        if by.by_agent:
            far.not_stalled(ctx, wid, "restart_session")
        # a worker here with a recorded agent conversation starts again on it; elsewhere its
        # backend restarts it where it runs (an SSH host there, a Job refuses)
        if way.kind == "local":
            try:
                if restart_worker(ctx, by.knobs, wid) is not None:
                    return None  # started again on its agent conversation
            except WorkerError as e:
                raise ExecError(f"restart_session: {e}") from e
        far.sessions_call("restart_session", lambda: way.restart(wid))
        return None


def _resume_told(by: Mover, wid: str, line: str) -> None:
    """An exited worker told a line: started again on its conversation, the line its first
    message (workers/resume.py), as a restart_session would, stalled ones refused."""
    if by.by_agent:
        far.not_stalled(by.ctx, wid, "steer_session")
    why = f"looop started you again on this same conversation to tell you: {line}"
    try:
        resume_worker(by.ctx, by.knobs, wid, by.cfg, why)
    except WorkerError as e:
        raise ExecError(f"steer_session: {e}") from e
