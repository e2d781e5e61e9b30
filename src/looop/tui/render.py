"""What `looop watch` paints, without Textual: emulated cells as Rich segments, and the fleet rows.

Kept free of Textual so the conversion and the ordering are testable on their own."""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import avt
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

from looop.home.errors import LooopError
from looop.home.stamps import parse_utc
from looop.sessions.screen import Row
from looop.sessions.state import Session
from looop.views import outcomes
from looop.views.needs import needs_at
from looop.views.outcomes import Outcome
from looop.views.workerrows import age

PULSE = "pulse"

# an ended worker's outcome: green went through, red failed, yellow waits on something else
GOOD_ENDS = frozenset({Outcome.LANDED, Outcome.PROPOSED, Outcome.VERIFIED})
BAD_ENDS = frozenset({Outcome.STALLED, Outcome.FAILED_VERIFY, Outcome.KILLED, Outcome.FAILED})

HEALTH_STYLE: Mapping[str, str] = {
    "up": "bold green", "down": "bold red", "busy": "green", "waiting-ask": "bold yellow",
    "stuck": "bold red", "dead": "dim", "unreachable": "bold magenta",
}  # fmt: skip


def rich_color(color: avt.Color | None) -> Color | None:
    """An emulated cell's colour as a Rich colour (None: the terminal's default)."""
    if color is None:
        return None
    if isinstance(color, avt.Color.Indexed):
        return Color.from_ansi(color[0])
    assert isinstance(color, avt.Color.RGB)
    return Color.from_rgb(color[0], color[1], color[2])


class Painter:
    """Turns emulated rows into Rich segments, one cached Style per distinct cell look."""

    def __init__(self) -> None:
        self._styles: dict[tuple[Any, ...], Style] = {}
        self._note = Style(color=Color.from_ansi(8))

    def style(self, pen: avt.Pen, cursor: bool = False) -> Style:
        key: tuple[Any, ...] = (cursor,)
        if not pen.is_default():
            fg, bg = pen.foreground, pen.background
            key = (cursor, None if fg is None else repr(fg), None if bg is None else repr(bg),
                   pen.bold, pen.faint, pen.italic, pen.underline, pen.strikethrough, pen.blink,
                   pen.inverse)  # fmt: skip
        style = self._styles.get(key)
        if style is None:
            if len(self._styles) > 4096:
                self._styles.clear()
            reverse = pen.inverse != cursor  # the cursor cell shows inverted
            style = Style(
                color=rich_color(pen.foreground),
                bgcolor=rich_color(pen.background),
                bold=pen.bold or None,
                dim=pen.faint or None,
                italic=pen.italic or None,
                underline=pen.underline or None,
                strike=pen.strikethrough or None,
                blink=pen.blink or None,
                reverse=reverse or None,
            )
            self._styles[key] = style
        return style

    def segments(self, row: Row | None, cols: int, cursor: int | None = None) -> list[Segment]:
        """Exactly `cols` cells: a wide character takes its two (the emulator's empty right
        half is skipped); a note (str) is a dim row."""
        if not isinstance(row, avt.Line):
            return [Segment((row or "")[:cols].ljust(cols), self._note if row else None)]
        out: list[Segment] = []
        run: list[str] = []
        run_style: Style | None = None
        for x, cell in enumerate(row.cells[:cols]):
            if not cell.width:
                continue
            style = self.style(cell.pen, cursor == x)
            if style is not run_style and run:
                out.append(Segment("".join(run), run_style))
                run = []
            run_style = style
            run.append(cell.char)
        if run:
            out.append(Segment("".join(run), run_style))
        return out

    def text(self, row: Row | None, cols: int, cursor: int | None = None) -> Text:
        """The same row as a Rich Text (handy for tests and for printing)."""
        out = Text(end="")
        for seg in self.segments(row, cols, cursor):
            out.append(seg.text, seg.style)
        return out


# -- the fleet table ----------------------------------------------------------------------


@dataclass(frozen=True)
class FleetRow:
    id: str
    health: str
    state: str
    alive: bool
    started: float | None  # unix seconds, from the session's started_at
    last_output: float | None
    verify: str | None
    note: str | None
    host: str | None = None  # a worker away from home: where it runs
    outcome: str | None = None  # how an ended worker ended, once the beat recorded it
    exit_code: int | None = None


def _stamp(stamp: object) -> float | None:
    return parse_utc(stamp) if isinstance(stamp, str) else None


def fleet_rows(
    sessions: Iterable[Session],
    workers: Iterable[Mapping[str, Any]],
    show_all: bool,
    keep: str | None = None,
    since: tuple[float, float] | None = None,
    needing: frozenset[str] = frozenset(),
) -> list[FleetRow]:
    """The pulse first (health up/down), then the workers that need a human (`needing`: the
    needs-you queue's), then the rest oldest first (longest uptime on top, so a new worker
    joins at the bottom and rows move only when one needs you or stops needing you).
    Living only unless `show_all`;
    `keep` (the selected id) stays listed even once it died, so the pane does not vanish.
    `since` (window seconds, now): a finished worker last heard from within the window is
    listed too (v1.0's `watch --since`)."""
    out = [
        FleetRow(PULSE, "up" if s.alive else "down", s.label, s.alive, _stamp(s.started_at),
                 None, None, None)
        for s in sessions if s.id == PULSE
    ][:1]  # fmt: skip
    rest = [
        FleetRow(
            id=str(w["id"]),
            health=str(w["health"]),
            state=str(w.get("label") or w.get("state") or "?"),
            alive=bool(w.get("alive")),
            started=_stamp(w.get("started_at")),
            last_output=w.get("last_output_unix"),
            verify=w.get("verify"),
            note=w.get("note"),
            host=str(w["host"]) if w.get("host") else None,
            outcome=w["outcome"] if isinstance(w.get("outcome"), str) else None,
            exit_code=w["exit_code"] if type(w.get("exit_code")) is int else None,
        )
        for w in workers
        if w.get("id") != PULSE
        and (show_all or w.get("alive") or w.get("id") == keep or _recent(w, since))
    ]
    rest.sort(key=lambda r: (r.id not in needing, r.started is None, r.started or 0.0, r.id))
    return out + rest


def is_far(sid: str | None, far: Mapping[str, Mapping[str, Any]], here: Container[str]) -> bool:
    """Is this id's row the one away from home: a living remote worker, or one with no
    session here?"""
    row = far.get(sid) if sid is not None else None
    return row is not None and (bool(row.get("alive")) or sid not in here)


def with_far(
    workers: list[dict[str, Any]], far: dict[str, dict[str, Any]], here: Container[str]
) -> list[dict[str, Any]]:
    """The home's workers and those away from home, one row per id: a living remote worker
    over a finished local session of its id, else the session here."""
    ids = {str(w["id"]) for w in workers}
    out = [w for w in workers if not is_far(str(w["id"]), far, here)]
    return out + [r for sid, r in far.items() if is_far(sid, far, here) or sid not in ids]


def needing_you(data: str, workers: list[dict[str, Any]]) -> frozenset[str]:
    """The ids the needs-you queue names (none when it does not read: the status line says
    why)."""
    try:
        return frozenset(n.worker for n in needs_at(data, workers))
    except (LooopError, OSError):
        return frozenset()


def _recent(w: Mapping[str, Any], since: tuple[float, float] | None) -> bool:
    """Was this finished worker last heard from (its last output, else its start) within the
    window?"""
    if since is None:
        return False
    window, now = since
    last = w.get("last_output_unix")
    if not isinstance(last, int | float):
        last = _stamp(w.get("started_at"))
    return last is not None and now - last <= window


def default_selection(rows: list[FleetRow]) -> str | None:
    """The pulse when there is one, else the worker whose output moved last (living first)."""
    if not rows:
        return None
    if rows[0].id == PULSE:
        return PULSE
    best = max(rows, key=lambda r: (r.alive, r.last_output or 0.0, r.started or 0.0))
    return best.id


def state_cell(row: FleetRow) -> Text:
    """A live worker's state; an ended one's outcome (views/outcomes.py) once the beat recorded
    it, with its exit code when it simply exited, else the state it ended in."""
    if row.alive or row.outcome not in outcomes.TABLE:
        return Text(row.state)
    shown = outcomes.short(row.outcome)
    if row.outcome in (Outcome.EXITED, Outcome.FAILED):
        if row.exit_code is not None:
            shown = f"{shown} {row.exit_code}"
        return Text(shown, style="green" if row.exit_code == 0 else "red")
    bad = "red" if row.outcome in BAD_ENDS else "yellow"
    return Text(shown, style="green" if row.outcome in GOOD_ENDS else bad)


def row_cells(row: FleetRow, now: float, selected: bool) -> tuple[Text, ...]:
    """ID HEALTH STATE UP IDLE VERIFY NOTE, as styled cells (STATE: an ended worker's
    outcome)."""
    up = now - row.started if row.alive and row.started is not None else None
    idle = now - row.last_output if row.alive and row.last_output is not None else None
    mark = "▸ " if selected else "  "
    ident = Text(mark + row.id, style="bold" if selected else "")
    if row.host:
        ident.append(f" @{row.host}", style="dim")
    return (
        ident,
        Text(row.health, style=HEALTH_STYLE.get(row.health, "")),
        state_cell(row),
        Text(age(up)),
        Text(age(idle)),
        Text(
            row.verify or "—", style={"pass": "green", "fail": "red"}.get(row.verify or "", "dim")
        ),
        Text(f"⚑ {row.note}" if row.note else "", style="yellow"),
    )
