"""`looop kill ID` (and `worker kill ID`) without click: the plain spellings, the same move.

The click verb
(cli/workers.py) and this face run the same decision through `steermove.steer` and print the
same line. Anything unusual (--help, an unknown or repeated option) is left to click."""

from __future__ import annotations

TYPE_CHECKING = False  # not `from typing`: a hot verb must not pay for it

if TYPE_CHECKING:
    from looop.home.clock import Clock

_OPTS = {"--reason": "reason", "--journal": "journal", "-j": "journal"}


def parse_fast(argv: list[str]) -> dict[str, str] | None:
    """{"id", "reason", "journal"?} for `kill ID [--reason R] [-j J]` (also `worker kill`,
    `w kill`, options in any order, `--opt=value` too); None sends the rest to click."""
    if argv[:1] == ["kill"]:
        rest = argv[1:]
    elif len(argv) >= 2 and argv[0] in ("worker", "w") and argv[1] == "kill":
        rest = argv[2:]
    else:
        return None
    got: dict[str, str] = {}
    i = 0
    while i < len(rest):
        tok = rest[i]
        name, value = tok, None
        if tok.startswith("--") and "=" in tok:
            name, value = tok.split("=", 1)
        if name in _OPTS:
            key = _OPTS[name]
            if key in got:
                return None  # said twice: click says how it reads that
            if value is None:
                if i + 1 >= len(rest) or rest[i + 1].startswith("-"):
                    return None
                value = rest[i + 1]
                i += 1
            got[key] = value
        elif tok.startswith("-") or "id" in got:
            return None
        else:
            got["id"] = tok
        i += 1
    if "id" not in got:
        return None
    got.setdefault("reason", "")
    return got


def run_fast(parsed: dict[str, str], env: dict[str, str], clock: Clock | None) -> None:
    # lazy: the move's door, passed once the argv is a kill's
    from looop.cli.steermove import kill_here

    kill_here(parsed, env, clock)


def serve(argv: list[str], env: dict[str, str], clock: Clock | None) -> bool:
    """`kill ID` (and `worker kill ID`): the move, in this process."""
    parsed = parse_fast(argv)
    if parsed is None:
        return False
    run_fast(parsed, env, clock)
    return True
