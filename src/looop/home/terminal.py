"""What reaches the terminal: the characters that may act on it shown as `\\uXXXX` (the stream
every verb's output passes through, `SafeStream`, so no print site can forget), and looop's own
colour (ANSI SGR) painted only where a person looks.

Without `re`: a verb printing a `—` or a `✗` does not pay ~6 ms to import it.
Binary writes (`.buffer`) and the file descriptor pass through SafeStream untouched: they are
for verbs whose job is raw terminal bytes (attach, log --raw)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any, TextIO

# C0 controls but \t and \n, DEL, C1 controls, and the format characters that reorder or hide
# text (bidi overrides and isolates, zero-width joiners, BOM, soft hyphen, line/para separators),
# and lone surrogates. Every one of them is non-printable to str.isprintable.
UNSAFE_RANGES = (
    (0x00, 0x08),
    (0x0B, 0x1F),
    (0x7F, 0x9F),
    (0xAD, 0xAD),
    (0x61C, 0x61C),
    (0x200B, 0x200F),
    (0x2028, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0xD800, 0xDFFF),
)
# for_terminal's escapes, one per unsafe character (`\\x1b`, `\\u202e`): made by the first text
# that has one, so a verb that prints none pays nothing for the table
_VISIBLE: dict[int, str] = {}
_SGR_MAX = 64  # parameter characters an SGR sequence may carry
_SGR_PARAMS = frozenset("0123456789;:")


def unsafe(ch: str) -> bool:
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in UNSAFE_RANGES)


def _sgr_end(line: str, i: int) -> int:
    """The end of an SGR sequence (`ESC [ params m`) starting at i, or -1."""
    if line[i + 1 : i + 2] != "[":
        return -1
    j = i + 2
    while j < len(line) and line[j] in _SGR_PARAMS:
        j += 1
    if j - (i + 2) > _SGR_MAX or line[j : j + 1] != "m":
        return -1
    return j + 1


def _defuse_line(line: str, crlf_ok: bool, out: list[str]) -> None:
    """One line (no `\\n` in it); a trailing CR is a CRLF line end when crlf_ok."""
    i, n = 0, len(line)
    start = 0
    while i < n:
        ch = line[i]
        if ch.isprintable() or ch == "\t":
            i += 1
            continue
        if ch == "\x1b":
            end = _sgr_end(line, i)
            if end > 0:
                i = end
                continue
        if ch == "\r" and i == n - 1 and crlf_ok:
            i += 1
            continue
        if unsafe(ch):
            out.append(line[start:i])
            out.append(f"\\u{ord(ch):04x}")
            start = i + 1
        i += 1
    out.append(line[start:])


def keep_colour(text: str) -> str:
    """Every control and invisible format character shown as `\\uXXXX`, except looop's own
    colour codes (SGR) and CRLF line ends. `\\uXXXX`, not `\\xXX`: inside a --json string it is
    a valid escape that decodes to the very character it replaced."""
    if text.replace("\n", "").replace("\t", "").isprintable():
        return text  # nearly every line: nothing to look at
    lines = text.split("\n")
    out: list[str] = []
    last = len(lines) - 1
    for k, line in enumerate(lines):
        if k:
            out.append("\n")
        _defuse_line(line, k < last, out)
    return "".join(out)


def for_terminal(text: str) -> str:
    """Untrusted text (an agent's, a script's) with every control and invisible format
    character shown as a visible escape, so nothing in it acts on the terminal (retitles,
    writes the clipboard, moves the cursor, hides text)."""
    if text.replace("\n", "").replace("\t", "").isprintable():
        return text
    if not _VISIBLE:
        _VISIBLE.update(
            (cp, f"\\x{cp:02x}" if cp < 0x100 else f"\\u{cp:04x}")
            for lo, hi in UNSAFE_RANGES
            for cp in range(lo, hi + 1)
        )
    return text.translate(_VISIBLE)


def line_for_terminal(text: str) -> str:
    """One line: like for_terminal, and newlines and tabs become visible too."""
    return for_terminal(text).replace("\n", "\\n").replace("\t", "\\t")


def strip_csi(text: str) -> str:
    """Every CSI sequence (`ESC [ params intermediates final`) removed: what click.echo does to
    text bound for a pipe or a file, so the contract verbs print what their click faces print."""
    if "\x1b[" not in text:
        return text
    out: list[str] = []
    i = start = 0
    n = len(text)
    while True:
        i = text.find("\x1b[", i)
        if i < 0:
            break
        j = i + 2
        while j < n and "0" <= text[j] <= "?":
            j += 1
        while j < n and " " <= text[j] <= "/":
            j += 1
        if j < n and "@" <= text[j] <= "~":
            out.append(text[start:i])
            i = start = j + 1
        else:
            i += 1
    out.append(text[start:])
    return "".join(out)


class SafeStream:
    """A text stream whose every write is defused (keep_colour); the rest is the inner one's."""

    def __init__(self, inner: TextIO) -> None:
        self._inner = inner

    def write(self, text: str) -> int:
        self._inner.write(keep_colour(text))
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


_SGR = {"green": "32", "yellow": "33", "red": "31", "dim": "2"}


def colour_on(tty: bool, env: Mapping[str, str]) -> bool:
    """Every face's one answer, in CPython's order: LOOOP_COLOR=0/1 says; else NO_COLOR
    (set, not empty) never; FORCE_COLOR (set, not empty) always, piped too; else only on a
    terminal that is not TERM=dumb."""
    own = env.get("LOOOP_COLOR", "").strip()
    if own in ("0", "1"):
        return own == "1"
    if env.get("NO_COLOR"):
        return False
    if env.get("FORCE_COLOR"):
        return True
    return tty and env.get("TERM") != "dumb"


def paint(text: str, colour: str | None, on: bool) -> str:
    return f"\x1b[{_SGR[colour]}m{text}\x1b[0m" if on and colour else text
