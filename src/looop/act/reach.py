"""How far a decision's steering reaches: a decision types into, sends keys to or restarts
only a session as contained as the decider (sandboxed while the decider is), or one a human
opted in when starting it (`looop worker start --steerable`); and what of the text it types
the tripwire must be able to read. A human's own steering (CLI, web, watch) passes none of
this — only the pulse's moves."""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from looop.act.outcome import ExecError
from looop.core.context import Ctx
from looop.home.config import Config
from looop.home.errors import LooopError
from looop.sessions.keys import key_bytes
from looop.sessions.state import session_dir, typed_mark
from looop.workers.startrecord import read_record

OPT_IN = "--steerable"

# keys that bring back a line the tripwire never read: history (Up, PgUp, C-p, C-r, C-s),
# the kill ring (C-y), and C-o (run this line, fetch the next from history)
_RECALL = {b"\x1b[A", b"\x1b[5~", b"\x10", b"\x12", b"\x13", b"\x19", b"\x0f"}
# bash's history expansion: `!` not followed by a blank, `=`, `(` or the end (`!!`, `!-2`,
# `!rm`, `!?x?`), and `^old^new` at a line's start
_HISTORY = re.compile(r"!(?![\s=(]|$)|^\s*\^", re.MULTILINE)
_FC = re.compile(r"^\s*fc(\s|$)", re.MULTILINE)  # fc -s runs a command from history again
# what edits a line as it is typed (so what runs is not what was read): C0 but CR and LF, DEL,
# C1; a tab completes words
_EDITING = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Reach:
    """A session as a decision finds it: its walls and a human's opt-in."""

    sandboxed: bool
    steerable: bool
    cwd: str | None  # where its text runs (its start record), None when unknown


def decider_boxed(cfg: Config) -> bool:
    """The decider runs inside walls: its tick runner under srt (the runner's or the top
    `sandbox`), or its shell under shell_policy's sandbox."""
    return cfg.decider().on or cfg.shell_policy.sandbox.on


def session_reach(ctx: Ctx, wid: str, away: bool) -> Reach | None:
    """The session's walls from its start record; None when there is no such session (the
    move then fails as it always has). A worker on another host, or one without a readable
    record, counts as unsandboxed and not opted in: fail closed."""
    if away:
        return Reach(False, False, None)
    try:
        rec = read_record(ctx, wid)
    except LooopError:
        rec = None
    if rec is None:
        if not os.path.exists(session_dir(ctx.paths.data, wid)):
            return None
        return Reach(False, False, None)
    return Reach(rec.sandbox.on, rec.steerable, rec.cwd)


def check_reach(ctx: Ctx, cfg: Config | None, what: str, wid: str, away: bool) -> Reach | None:
    """Refuse (one line naming the session and the opt-in) a decision's move into a session
    less contained than the decider that no human opted in. The session's Reach, None when
    there is no such session."""
    try:
        boxed = decider_boxed(cfg if cfg is not None else ctx.config())
    except LooopError as e:  # fail closed: without the config the decider's walls are unknown
        raise ExecError(f"{what} not run: {e}") from e
    got = session_reach(ctx, wid, away)
    if got is None or got.sandboxed or got.steerable or not boxed:
        return got
    where = "runs on another host" if away else "runs unsandboxed"
    raise ExecError(
        f"{what} refused: worker {wid} {where} and the decider is sandboxed, so a decision "
        f"may not reach into it — a human can (`looop send {wid} …`), or start it with "
        f"`looop worker start {wid} {OPT_IN} …` to let decisions steer it"
    )


def typed_text(what: str, text: str) -> list[str]:
    """The shell text the tripwire reads for a decision's steer (CR is Enter: a line break),
    after refusing keys in it that edit the line as it is typed. A leading `!` (an agent
    CLI's shell mode) is read without it too."""
    bad = _EDITING.search(text)
    if bad is not None:
        raise ExecError(
            f"{what} refused: its input holds the control character {bad.group()!r}, which "
            "edits the line as it is typed, so the tripwire cannot read what would run — "
            "type plain text, and send keys with send_key"
        )
    lines = _lines(text)
    split = lines.split("\n")
    bare = "\n".join(ln.lstrip()[1:] if ln.lstrip().startswith("!") else ln for ln in split)
    return [lines] if bare == lines else [lines, bare]


def _lines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def check_recall(what: str, text: str, reach: Reach | None) -> None:
    """Into an unsandboxed session a decision's text never runs a command again from the
    session's history (bash's `!!`, `!-2`, `!word`, `^old^new`, `fc`): the tripwire never
    read that command."""
    if reach is None or reach.sandboxed:
        return
    lines = _lines(text)
    found = _HISTORY.search(lines) or _FC.search(lines)
    if found is not None:
        word = lines[found.start() :].split()[0] if lines[found.start() :].split() else "!"
        raise ExecError(
            f"{what} refused: {word!r} would run a command again from the session's history, "
            "which the tripwire never read, in a session without a sandbox — write the "
            "command out (and drop the `!`)"
        )


def check_keys(what: str, wid: str, keys: tuple[str, ...], reach: Reach | None) -> None:
    """A decision's keys into an unsandboxed session never bring back a line the tripwire
    never read (history, the kill ring); into a sandboxed one they stay inside its walls."""
    if reach is None or reach.sandboxed:
        return
    for k in keys:
        try:
            seq = key_bytes(k)
        except LooopError:
            return  # an unknown key: the send refuses it as ever, naming it
        if seq in _RECALL:
            raise ExecError(
                f"{what} refused: {k} brings back a line from worker {wid}'s history, which "
                "the tripwire never read, into a session without a sandbox — type the "
                "command with steer_session, or ask a human (`looop key`)"
            )


def note_typist(ctx: Ctx, wid: str, agent: str | None) -> None:
    """Who typed into a session last: an agent surface (`agent`: "pulse", "mcp") marks it,
    a human's typing (`looop send`, the web) clears the mark. `looop land` reads it
    (cli/land.py `land_actor`)."""
    with contextlib.suppress(OSError, LooopError):
        mark = Path(typed_mark(ctx.paths.data, wid))
        if agent is None:
            mark.unlink(missing_ok=True)
        elif mark.parent.is_dir():
            mark.write_text(agent)
