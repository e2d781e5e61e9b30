"""Pulse event lines (human or NDJSON) and the durable events.jsonl channel."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TextIO

from looop.home import jsonio
from looop.home.clock import Clock
from looop.home.eventlog import append_record
from looop.home.knobs import env_knob
from looop.home.stamps import utc_stamp
from looop.home.terminal import colour_on, line_for_terminal

if TYPE_CHECKING:
    from pathlib import Path

Level = Literal["info", "step", "ok", "warn", "error"]
GLYPHS: dict[str, str] = {"info": "·", "step": "→", "ok": "✓", "warn": "⚡", "error": "✗"}
_RESERVED = ("ts", "level", "event", "msg")

DIM, BOLD, RESET = "\x1b[2m", "\x1b[1m", "\x1b[0m"
_COLOR = {"ok": "\x1b[32m", "warn": "\x1b[33m", "error": "\x1b[31m"}


def human_line(level: Level, msg: str, hhmmss: str, color: bool) -> str:
    """One pulse line; the message may quote untrusted text, so it can never act on a terminal."""
    glyph = GLYPHS[level]
    msg = line_for_terminal(msg)
    if not color:
        return f"[{hhmmss}] {glyph} {msg}"
    if level in ("info", "step"):
        return f"{DIM}[{hhmmss}] {glyph} {msg}{RESET}"
    c = _COLOR[level]
    body = f"{c}{msg}{RESET}" if level in ("warn", "error") else msg
    return f"{DIM}[{hhmmss}]{RESET} {BOLD}{c}{glyph}{RESET} {body}"


def json_line(level: Level, name: str, msg: str, ts: float, fields: dict[str, Any]) -> str:
    obj: dict[str, Any] = {k: v for k, v in fields.items() if k not in _RESERVED}
    obj.update(ts=utc_stamp(ts), level=level, event=name, msg=msg)
    return jsonio.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


@dataclass(eq=False, repr=False)
class Emitter:
    """Writes pulse events to a stream and durable events to events.jsonl (both best effort)."""

    clock: Clock
    events_path: Path | None
    stream: TextIO | None = None
    fmt: Literal["human", "json"] = "human"
    color: bool = False
    max_bytes: int = 5 * 1024 * 1024
    sink: Callable[[str, dict[str, Any]], None] | None = None
    seen: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    keep_seen: bool = False
    warn_to: TextIO | None = None  # where warnings go when no event stream is shown (stderr)

    def emit(self, level: Level, name: str, msg: str, **fields: Any) -> None:
        """A pulse line: `[HH:MM:SS] glyph msg` or one JSON object."""
        if self.keep_seen:
            self.seen.append((name, dict(fields, msg=msg, level=level)))
        stream = self.stream
        if stream is None and level == "warn":
            stream = self.warn_to
        if stream is None:
            return
        now = self.clock.now()
        if self.fmt == "json":
            line = json_line(level, name, msg, now, fields)
        else:
            line = human_line(level, msg, self.clock.local(now).strftime("%H:%M:%S"), self.color)
        with contextlib.suppress(OSError, ValueError):
            stream.write(line + "\n")
            stream.flush()

    def record(self, event: str, **fields: Any) -> None:
        """One durable line in events.jsonl; never raises."""
        if self.sink is not None:
            self.sink(event, fields)
        if self.events_path is None:
            return
        append_record(self.events_path, event, fields, self.clock.now(), self.max_bytes)


def emitter_for(
    env: Mapping[str, str], clock: Clock, events_path: Path | None, events_to: str | None
) -> Emitter:
    """A verb's events: "stdout" for the pulse log, "stderr" for verbs whose stdout is data, or
    None: then only warnings, on stderr (what is wrong with the config is said all the same)."""
    as_json = env.get("LOOOP_LOG_FORMAT", "").strip().lower() == "json"
    out = sys.stdout if events_to == "stdout" else sys.stderr
    return Emitter(
        clock=clock,
        events_path=events_path,
        stream={"stdout": sys.stdout, "stderr": sys.stderr}.get(events_to or ""),
        fmt="json" if as_json else "human",
        color=not as_json and colour_on(out.isatty(), env),
        warn_to=sys.stderr,
        max_bytes=env_knob("events_max_bytes", env),
    )
