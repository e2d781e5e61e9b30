"""journal.md (one sanitised, stamped line per move) and the goal-activity stamps."""

from __future__ import annotations

import os
import unicodedata

from looop.act.outcome import ExecError
from looop.core.context import Ctx
from looop.home import locks, store
from looop.home.config import Knobs
from looop.home.errors import CorruptState

JOURNAL_MAX_CHARS = 500


def _is_break(c: str) -> bool:
    return c.isspace() or unicodedata.category(c) in ("Cc", "Zl", "Zp")


def sanitise_journal(text: str) -> str:
    """One line: control characters and line breaks become spaces, runs collapse, capped."""
    flat = " ".join("".join(" " if _is_break(c) else c for c in text).split())
    if len(flat) > JOURNAL_MAX_CHARS:
        flat = flat[: JOURNAL_MAX_CHARS - 1] + "…"
    return flat


def journal_row(line: str) -> dict[str, str | None]:
    """`- 2026-01-01 09:00 text` as {"at": "2026-01-01 09:00", "text": "text", "line": …};
    "at" is None on a line without the stamp."""
    body = line[2:] if line.startswith("- ") else line
    parts = body.split(" ", 2)
    at, text = None, body
    if len(parts) == 3 and len(parts[0]) == 10 and len(parts[1]) == 5 and parts[1][2] == ":":
        at, text = f"{parts[0]} {parts[1]}", parts[2]
    return {"at": at, "text": text, "line": line}


def append_journal(ctx: Ctx, knobs: Knobs, text: str) -> str:
    """Append `- <local YYYY-MM-DD HH:MM> <text>` to journal.md; returns the sanitised text."""
    line_text = sanitise_journal(text) or "(no journal text)"
    stamp = ctx.clock.local().strftime("%Y-%m-%d %H:%M")
    path = ctx.paths.journal
    limit = knobs.num("journal_max_bytes")
    try:
        with locks.dir_lock(ctx.paths.state_lock):
            if limit > 0:
                try:
                    if path.stat().st_size >= limit:
                        os.replace(path, path.with_name(path.name + ".1"))
                except FileNotFoundError:
                    pass
            store.append_line(path, f"- {stamp} {line_text}\n")
    except OSError as e:
        raise ExecError(f"cannot append to journal.md: {e.strerror or e}") from e
    return line_text


def stamp_goal_activity(ctx: Ctx, goal: str) -> None:
    """Fairness data for the prompt; best effort, since the action already happened."""
    path = ctx.paths.goal_activity
    try:
        with locks.dir_lock(ctx.paths.state_lock):
            try:
                current = store.read_json_object(path) or {}
            except CorruptState:
                current = {}  # rebuilt from here on; only ages are lost
            current[goal] = int(ctx.clock.now())
            # whole or old, never torn; not fsynced: a power cut only makes a goal look older
            store.write_json(path, current, durable=False)
    except OSError as e:
        ctx.events.emit(
            "warn",
            "goal.activity_failed",
            f"could not stamp goal activity for '{goal}': {e.strerror or e}",
            goal=goal,
        )
