"""`looop cost [today|week|all] [--by X] [--json]` and `looop cost report KIND ID RUNNER USD`:
the face; the work and its parsing are home/costspan.py's and home/costrow.py's, shared with
click's face (and, for a report, the box's door)."""

from __future__ import annotations

from looop.home import costspan
from looop.home.clock import clock_for, now_of
from looop.home.costrow import parse_fast, run_fast

TYPE_CHECKING = False  # not `from typing`: a hot verb must not pay for it

if TYPE_CHECKING:
    from looop.home.clock import Clock


def serve(argv: list[str], env: dict[str, str], clock: Clock | None) -> bool:
    """`cost report …` and the span reports in their plain spellings."""
    parsed = parse_fast(argv)
    if parsed is not None:
        run_fast(parsed, env, now_of(clock))
        return True
    span = costspan.parse_fast(argv)
    if span is None:
        return False
    costspan.run_fast(span, env, clock_for(env, clock))
    return True
