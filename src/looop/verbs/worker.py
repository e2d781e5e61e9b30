"""`looop worker start` without click: the plain spellings of the verb, the same move.

The click verb (cli/workers.py) and this face both run cli/startwork.py's move with the same
decision and the same `started_ok` check, and print the same two lines, so output, exit code
and files agree (tests/unit/cli/test_worker_start_parity.py). The plain spellings are read by
home/startargs.py; anything unusual (--help, an unknown or repeated option, a value that looks
like an option) is left to click."""

from __future__ import annotations

from looop.home.startargs import Start as Start
from looop.home.startargs import parse_fast as parse_fast

TYPE_CHECKING = False  # not `from typing`: a hot verb must not pay for it

if TYPE_CHECKING:
    from looop.home.clock import Clock


def run_fast(start: Start, env: dict[str, str], clock: Clock | None) -> None:
    # lazy: the move's door, passed once the argv is a start's
    from looop.cli.startwork import start_here

    start_here(start, env, clock)


def serve(argv: list[str], env: dict[str, str], clock: Clock | None) -> bool:
    """`worker start …` (`worker kill` and `worker list` the verb table hands to their faces)."""
    parsed = parse_fast(argv)
    if parsed is None:
        return False
    run_fast(parsed, env, clock)
    return True
