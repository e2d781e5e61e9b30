"""Screenshots of an emulated screen: plain text, ANSI-colored text or JSON cells, and the
screen hash (what `looop shot` prints and `wait-idle` compares)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import pyte
from pyte.screens import Char

from looop.sessions.protocol import SHOT_FORMATS

if TYPE_CHECKING:
    from looop.sessions.vtscreen import SessionScreen

_BASE16 = ["black", "red", "green", "brown", "blue", "magenta", "cyan", "white"]


def _row_text(screen: pyte.Screen, y: int) -> str:
    row = screen.buffer[y]
    if not row:
        return ""
    return "".join(row[x].data for x in range(screen.columns)).rstrip()


def plain_rows(screen: pyte.Screen) -> list[str]:
    return [_row_text(screen, y) for y in range(screen.lines)]


def screen_hash(rows: list[str]) -> str:
    """Stable across processes (never Python's hash()); color-only changes keep it."""
    h = hashlib.blake2b(digest_size=8)
    for row in rows:
        h.update(row.encode("utf-8", "replace"))
        h.update(b"\n")
    return h.hexdigest()


def _trimmed(rows: list[str]) -> list[str]:
    end = len(rows)
    while end > 0 and not rows[end - 1]:
        end -= 1
    return rows[:end]


def _sgr_color(value: str, base: int) -> list[str]:
    """SGR parameters for a stored color; base 30 = foreground, 40 = background."""
    if value.startswith("idx"):
        n = int(value[3:])
        if n < 8:
            return [str(base + n)]
        if n < 16:
            return [str(base + 60 + n - 8)]
        return [str(base + 8), "5", str(n)]
    if value.startswith("#") and len(value) == 7:
        return [str(base + 8), "2", *(str(int(value[k : k + 2], 16)) for k in (1, 3, 5))]
    if value in _BASE16:  # pyte's own names, should any slip through
        return [str(base + _BASE16.index(value))]
    return []


def _style_params(ch: Char) -> list[str]:
    out: list[str] = []
    if ch.bold:
        out.append("1")
    if ch.italics:
        out.append("3")
    if ch.underscore:
        out.append("4")
    if ch.blink:
        out.append("5")
    if ch.reverse:
        out.append("7")
    if ch.strikethrough:
        out.append("9")
    if ch.fg != "default":
        out += _sgr_color(ch.fg, 30)
    if ch.bg != "default":
        out += _sgr_color(ch.bg, 40)
    return out


def _row_ansi(screen: pyte.Screen, y: int) -> str:
    row = screen.buffer[y]
    parts: list[str] = []
    current: list[str] = []
    last = -1
    for x in range(screen.columns):
        ch = row[x]
        style = _style_params(ch)
        if ch.data not in ("", " ") or style:
            last = x
    for x in range(last + 1):
        ch = row[x]
        style = _style_params(ch)
        if style != current:
            parts.append("\x1b[" + ";".join(["0", *style]) + "m")
            current = style
        parts.append(ch.data)
    if current:
        parts.append("\x1b[0m")
    return "".join(parts)


def _color_json(value: str) -> str | None:
    if value == "default":
        return None
    if value in _BASE16:
        return f"idx{_BASE16.index(value)}"
    return value


def _cells(screen: pyte.Screen) -> list[dict[str, Any]]:
    cells: list[dict[str, Any]] = []
    for y in range(screen.lines):
        row = screen.buffer.get(y)
        if not row:
            continue
        for x in sorted(k for k in row if k < screen.columns):
            ch = row[x]
            if ch.data == "":
                continue  # the right half of a wide character
            cell: dict[str, Any] = {"row": y, "col": x, "char": ch.data}
            fg, bg = _color_json(ch.fg), _color_json(ch.bg)
            if fg:
                cell["fg"] = fg
            if bg:
                cell["bg"] = bg
            for key, attr in (
                ("bold", ch.bold),
                ("italic", ch.italics),
                ("underline", ch.underscore),
                ("inverse", ch.reverse),
            ):
                if attr:
                    cell[key] = True
            if ch.data != " " or len(cell) > 3:
                cells.append(cell)
    return cells


FORMATS = SHOT_FORMATS


def render(screen: SessionScreen, fmt: str = "plain", trim: bool = True) -> dict[str, Any]:
    """The screenshot object: rows, cols, cursor, alternate_screen, screen_hash + text|cells."""
    rows = plain_rows(screen)
    out: dict[str, Any] = {
        "format": fmt,
        "rows": screen.lines,
        "cols": screen.columns,
        "cursor": {
            "row": min(screen.cursor.y, screen.lines - 1),
            "col": min(screen.cursor.x, screen.columns - 1),
            "hidden": bool(screen.cursor.hidden),
        },
        "alternate_screen": screen.alternate,
        "screen_hash": screen_hash(rows),
    }
    if fmt == "plain":
        out["text"] = "\n".join(_trimmed(rows) if trim else rows)
    elif fmt == "ansi":
        count = len(_trimmed(rows)) if trim else screen.lines
        out["text"] = "\n".join(_row_ansi(screen, y) for y in range(count)) + "\x1b[0m"
    elif fmt == "json":
        out["cells"] = _cells(screen)
    else:
        raise ValueError(f"unknown screenshot format {fmt!r} (use plain, ansi or json)")
    return out
