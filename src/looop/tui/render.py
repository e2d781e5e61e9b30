"""What `looop watch` paints, without Textual: pyte cells as Rich segments, and the fleet rows.

Kept free of Textual so the conversion and the ordering are testable on their own."""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pyte.screens import Char
from rich.cells import cell_len
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

from looop.home.errors import LooopError
from looop.sessions.state import Session
from looop.views import outcomes
from looop.views.needs import needs_at
from looop.views.outcomes import Outcome
from looop.workers.health import age

PULSE = "pulse"

# pyte's own colour names (its stock SGR handler), should any reach us: "brown" is yellow.
_PYTE_NAMES = {
    "black": 0,
    "red": 1,
    "green": 2,
    "brown": 3,
    "yellow": 3,
    "blue": 4,
    "magenta": 5,
    "cyan": 6,
    "white": 7,
}
# an ended worker's outcome: green went through, red failed, yellow waits on something else
GOOD_ENDS = frozenset({Outcome.LANDED, Outcome.PROPOSED, Outcome.VERIFIED})
BAD_ENDS = frozenset({Outcome.STALLED, Outcome.FAILED_VERIFY, Outcome.KILLED, Outcome.FAILED})
_HEX = frozenset("0123456789abcdefABCDEF")

HEALTH_STYLE: Mapping[str, str] = {
    "up": "bold green",
    "down": "bold red",
    "busy": "green",
    "waiting-ask": "bold yellow",
    "stuck": "bold red",
    "dead": "dim",
    "unreachable": "bold magenta",
}


def rich_color(value: str) -> Color | None:
    """A pyte colour (`default`, `idxN`, `#rrggbb`, a pyte name, bare hex) as a Rich colour."""
    if not value or value == "default":
        return None
    if value.startswith("idx"):
        digits = value[3:]
        if digits.isdigit() and int(digits) < 256:
            return Color.from_ansi(int(digits))
        return None
    hexpart = value[1:] if value.startswith("#") else value
    if len(hexpart) == 6 and set(hexpart) <= _HEX:
        return Color.parse("#" + hexpart.lower())
    name = value.lower()
    if name.startswith("bright") and name[6:] in _PYTE_NAMES:
        return Color.from_ansi(_PYTE_NAMES[name[6:]] + 8)
    if name in _PYTE_NAMES:
        return Color.from_ansi(_PYTE_NAMES[name])
    return None


class Painter:
    """Turns pyte rows into Rich segments, one cached Style per distinct cell look."""

    def __init__(self) -> None:
        self._styles: dict[tuple[Any, ...], Style] = {}

    def style(self, ch: Char, cursor: bool = False) -> Style:
        key = (*ch[1:], cursor)
        style = self._styles.get(key)
        if style is None:
            if len(self._styles) > 4096:
                self._styles.clear()
            reverse = bool(ch.reverse) != cursor  # the cursor cell shows inverted
            style = Style(
                color=rich_color(ch.fg),
                bgcolor=rich_color(ch.bg),
                bold=bool(ch.bold) or None,
                italic=bool(ch.italics) or None,
                underline=bool(ch.underscore) or None,
                strike=bool(ch.strikethrough) or None,
                blink=bool(ch.blink) or None,
                reverse=reverse or None,
            )
            self._styles[key] = style
        return style

    def segments(
        self, row: Mapping[int, Char] | None, cols: int, default: Char, cursor: int | None = None
    ) -> list[Segment]:
        """Exactly `cols` cells: wide characters take their two cells (pyte stores an empty
        right half, skipped here); a half-overwritten wide character becomes a space."""
        if not row and cursor is None:
            return [Segment(" " * cols, self.style(default))]
        out: list[Segment] = []
        run: list[str] = []
        run_style: Style | None = None
        x = 0
        while x < cols:
            ch = row.get(x, default) if row else default
            text = ch.data
            width = 1
            if not (len(text) == 1 and " " <= text <= "~"):
                width = cell_len(text)
                if width == 2 and not (
                    x + 1 < cols and row is not None and row.get(x + 1, default).data == ""
                ):
                    text, width = " ", 1
                elif width not in (1, 2):
                    text, width = " ", 1  # an empty half or a zero-width leftover
            style = self.style(ch, cursor == x)
            if style is not run_style and run:
                out.append(Segment("".join(run), run_style))
                run = []
            run_style = style
            run.append(text)
            x += width
        if run:
            out.append(Segment("".join(run), run_style))
        return out

    def text(
        self, row: Mapping[int, Char] | None, cols: int, default: Char, cursor: int | None = None
    ) -> Text:
        """The same row as a Rich Text (handy for tests and for printing)."""
        out = Text(end="")
        for seg in self.segments(row, cols, default, cursor):
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


def parse_stamp(stamp: str | None) -> float | None:
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


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
    out: list[FleetRow] = []
    for s in sessions:
        if s.id == PULSE:
            out.append(
                FleetRow(
                    id=PULSE,
                    health="up" if s.alive else "down",
                    state=s.label,
                    alive=s.alive,
                    started=parse_stamp(s.started_at),
                    last_output=None,
                    verify=None,
                    note=None,
                )
            )
            break
    rest = [
        FleetRow(
            id=str(w["id"]),
            health=str(w["health"]),
            state=str(w.get("label") or w.get("state") or "?"),
            alive=bool(w.get("alive")),
            started=parse_stamp(w.get("started_at")),
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
        last = parse_stamp(w.get("started_at"))
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
    return Text(
        shown,
        style="green"
        if row.outcome in GOOD_ENDS
        else "red"
        if row.outcome in BAD_ENDS
        else "yellow",
    )


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
            row.verify or "—",
            style={"pass": "green", "fail": "red"}.get(row.verify or "", "dim"),
        ),
        Text(f"⚑ {row.note}" if row.note else "", style="yellow"),
    )
