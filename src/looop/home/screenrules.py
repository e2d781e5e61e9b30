"""A runner's own needs-input patterns (`runners.<name>.needs_input` in the config): regular
expressions that, found on a worker's plain screen text, mean the worker waits for a human.

Validated strictly when the config is read (each bad one is one line naming its key) and
bounded in number and length. They run through the `regex` module with a time bound per
search (workers/needsinput), so a pattern that backtracks without end on a hostile screen
costs at most that bound, never a stuck beat.

`prompt` is the rule every worker is judged by beside those, its CLI's or none: what the last
line of a screen gone quiet asks (its supervisor judges it, sessions/lifecycle)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from looop.home.errors import LooopError, bad_config_value

if TYPE_CHECKING:
    from typing import Any

KEY = "needs_input"
MAX_PATTERNS = 16
MAX_CHARS = 300
# Said on a last line, it asks whoever reads the screen: a yes/no question, "press Enter", a
# password or passphrase, a field with its default (`package name: (app)`). Compiled at its
# first search (re keeps it): every verb that reads the config imports this module, ~1 ms.
_ASKS = (
    r"(?i)[\[(]\s*(?:y(?:es)?\s*/\s*no?|no?\s*/\s*y(?:es)?)\b[^\])\n]{0,20}[\])]"
    r"|\b(?:press|hit)\s+(?:enter|return|any key)\b"
    r"|\b(?:password|passphrase|passcode|pin)\b.*[:?]$"
    r"|:\s*[(\[][^)\]]{0,40}[)\]]$"
)


def prompt(text: str, reading: bool | None) -> str | None:
    """`prompt: the line` when the last line of this plain screen (one gone quiet) asks a
    human, else None. `reading`: whether the kernel saw the terminal's foreground process
    blocked reading it (home/procstat.reads_terminal; None: it cannot say). A line ending in
    `?` or `:` asks unless the kernel says nothing reads (a build log's `Compiling:` before a
    long step); one read from ending in `)` or `]` asks too (a default: `name: (app)`)."""
    lines = [s for s in (line.strip() for line in text[-16384:].splitlines()) if s]
    last = " ".join(lines[-1].split())[:200] if lines else ""
    ends = ("?", ":", ")", "]") if reading else ("?", ":")
    if last and (re.search(_ASKS, last) or (reading is not False and last.endswith(ends))):
        return f"prompt: {last}"
    return None


def parse_patterns(v: Any, source: str, where: str) -> tuple[str, ...]:
    """The list under `<where>needs_input`, each pattern compiled once to prove it is valid."""
    key = f"{where}{KEY}"
    if v is None:
        return ()
    expected = f"a list of at most {MAX_PATTERNS} regular expressions (strings)"
    if not isinstance(v, list) or len(v) > MAX_PATTERNS:
        raise bad_config_value(source, key, expected, v)
    out: list[str] = []
    for i, p in enumerate(v):
        if not isinstance(p, str) or not p.strip() or len(p) > MAX_CHARS:
            raise bad_config_value(
                source,
                f"{key}[{i}]",
                f"a non-empty regular expression of at most {MAX_CHARS} characters",
                p,
            )
        try:
            compiled(p)
        except (ValueError, OverflowError, RecursionError) as e:
            why = " ".join(str(e).split())[:120]
            raise LooopError(
                f"config {source}: key '{key}[{i}]' is not a valid regular expression ({why}) "
                "— fix or remove it"
            ) from None
        out.append(p)
    return tuple(out)


def compiled(pattern: str) -> Any:
    """The pattern compiled by `regex` (searched with a time bound by workers/needsinput);
    ValueError with regex's words when it is not one."""
    # lazy: the door to `regex` (~7 ms): only a config with patterns compiles them
    import regex

    try:
        return regex.compile(pattern, regex.MULTILINE)
    except regex.error as e:
        raise ValueError(str(e)) from None
