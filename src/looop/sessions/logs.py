"""Reading a session's `output.log` from disk: chunks from an offset, the last lines, follow.

Offsets are logical (logfiles.py): a rotation renames files under a reader, never moves a
byte's offset, so a follower reads on across it without losing or repeating a byte.

Everything here works without the supervisor (a finished or dead session reads the same),
and every read is bounded: one chunk at a time, a line looked back for at most MAX_TAIL_LINE.
The session is read light (sessionfiles.py, plain strings): `looop log` serves it without click.
Following a log to its session's end (`log -f`) waits on the session's state: that is
sessions/client.follow's.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from looop.home import logfiles
from looop.home.logfiles import open_view
from looop.home.sessionfiles import SessionError, get_light
from looop.home.textsafe import decode, safe_text, strip_ansi

if TYPE_CHECKING:
    from looop.home.store import AnyPath

INDEX = "output.times"  # `<wall time> <logical offset>` lines (sessions/outputnotes.OutputMark)
INDEX_MAX = 256 * 1024  # past this it is begun again, the one before kept as `.1`
READ_CHUNK = 4 * 1024 * 1024  # one incremental log read
MAX_TAIL_LINE = 1024 * 1024  # log_tail: longest line it looks back for


def read_at(sdir: AnyPath, offset: int, raw: bool, final: bool) -> tuple[str, int]:
    """Text from logical `offset` (one chunk) and the next offset. `final`: the log will not
    grow, so an unfinished tail is decoded lossily instead of held back. An offset whose
    bytes were rotated away reads on from the oldest byte kept."""
    with open_view(sdir, offset) as view:
        offset = max(offset, view.start)
        data = view.read(offset, READ_CHUNK)
    if not data:
        return "", offset
    if final and len(data) < READ_CHUNK:
        text = decode(data)  # nothing more will come: no holdback, decode the rest lossily
        return (text if raw else strip_ansi(text)), offset + len(data)
    text, used = safe_text(data, raw)
    return text, offset + used


def read_log(root: AnyPath, sid: str, since: int = 0, raw: bool = False) -> tuple[str, int]:
    """Safe-prefix text from byte offset `since` (one chunk of at most 4 MiB), next offset."""
    if since < 0:
        raise SessionError(f"invalid offset {since}: use a byte offset >= 0")
    s = get_light(str(root), sid)
    return read_at(s["dir"], since, raw, final=not s["alive"])


def offset_at(root: AnyPath, sid: str, when: float) -> int:
    """Where the output since wall time `when` begins in the log (a little before it, as the
    index is kept); 0 when the index starts later or is missing."""
    return index_offset(logfiles.files_dir(get_light(str(root), sid)["dir"]), when)


def index_offset(fdir: str, when: float) -> int:
    """offset_at in a log folder."""
    found = 0
    for name in (f"{INDEX}.1", INDEX):
        try:
            with open(f"{fdir}/{name}", "rb") as f:
                text = f.read(2 * INDEX_MAX).decode("ascii", "replace")
        except OSError:
            continue
        for line in text.splitlines():
            at, _, offset = line.partition(" ")
            if not (at.isdigit() and offset.isdigit()):
                continue  # a torn last line
            if int(at) > when:
                return found
            found = int(offset)
    return found


def _text_lines(data: bytes, raw: bool) -> list[str]:
    text, _ = safe_text(data, raw)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the log is not an empty last line
    return [ln.rstrip("\r") for ln in lines]


def log_tail(
    root: AnyPath,
    sid: str,
    lines: int | None,
    raw: bool = False,
    grep: str | None = None,
    end: int | None = None,
) -> str:
    """The last `lines` lines (all when None), optionally only those matching `grep`; reads
    backwards from the end (or from the logical offset `end`, where a follow goes on) so a
    long transcript costs only its tail. A single line longer than MAX_TAIL_LINE bytes is cut
    to its end."""
    s = get_light(str(root), sid)
    pat = compile_pattern(grep) if grep else None
    if lines is None and end is None:
        out = _text_lines(logfiles.tail(s["dir"], 1 << 62), raw)
        return "\n".join(ln for ln in out if pat is None or pat.search(ln))
    if lines is not None and lines <= 0:
        return ""
    want = (1 << 62) if lines is None else lines
    picked: list[str] = []
    with open_view(s["dir"]) as view:  # every file of this run: read backwards across them
        pos, low = view.end if end is None else max(view.start, min(end, view.end)), view.start
        lines = want
        carry = b""  # the (partial) first line of what was read so far
        first = True
        while pos > low and len(picked) < lines:
            step = min(65536, pos - low)
            pos -= step
            block = view.read(pos, step) + carry
            parts = block.split(b"\n")
            if pos > low and len(parts[0]) <= MAX_TAIL_LINE:
                carry, body = parts[0], parts[1:]
            else:  # the start of the log, or a line too long to keep looking for its start
                carry, body, pos = b"", parts, low
            if first and body and body[-1] == b"":
                body = body[:-1]  # the newline that ends the log is not an empty last line
            first = False
            for piece in reversed(body):
                # one log line may show as several: a TUI redraws with \r and cursor moves,
                # which the stripped text turns into lines; -n counts the lines shown
                for text in reversed(_strip_line(piece, raw).split("\n")):
                    if pat is None or pat.search(text):
                        picked.append(text.rstrip("\r"))
                        if len(picked) >= lines:
                            break
                if len(picked) >= lines:
                    break
    return "\n".join(reversed(picked))


def log_end(root: AnyPath, sid: str) -> int:
    """The logical offset the log has reached (where `log -f -n N` goes on after its N)."""
    with open_view(get_light(str(root), sid)["dir"]) as view:
        return int(view.end)


def pick_lines(text: str, grep: str | None, lines: int | None) -> str:
    """`--grep` and `--tail` applied to text already read (`log --since/--json`)."""
    if grep is None and lines is None:
        return text
    pat = compile_pattern(grep) if grep else None
    body, nl = (text[:-1], "\n") if text.endswith("\n") else (text, "")
    kept = [ln for ln in body.split("\n") if pat is None or pat.search(ln)] if body else []
    if lines is not None:
        kept = kept[-lines:] if lines > 0 else []
    return "\n".join(kept) + nl if kept else ""


def _strip_line(piece: bytes, raw: bool) -> str:
    if raw:
        return safe_text(piece[-MAX_TAIL_LINE:], raw)[0].rstrip("\r")
    # a piece starts a line, so a CR first (once escapes are out) moves nowhere: read it after
    # a line's end, as strip_ansi folds such a CR, then drop that end again
    return safe_text(b"\n" + piece[-MAX_TAIL_LINE:], raw)[0][1:].rstrip("\r")


def compile_pattern(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.MULTILINE)  # ^ and $ mean line starts and ends
    except re.error as e:
        raise SessionError(f"invalid pattern `{pattern}`: {e}") from e
