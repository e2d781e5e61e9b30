"""`looop cost report KIND ID RUNNER USD`: the face; the work and its parsing are
home/costrow.py's, shared with click's face and the box's door."""

from __future__ import annotations

from looop.home.clock import now_of
from looop.home.costrow import parse_fast, run_fast

TYPE_CHECKING = False  # not `from typing`: a hot verb must not pay for it

if TYPE_CHECKING:
    from looop.home.clock import Clock


def serve(argv: list[str], env: dict[str, str], clock: Clock | None) -> bool:
    """`cost report …` in its plain spelling."""
    parsed = parse_fast(argv)
    if parsed is None:
        return False
    run_fast(parsed, env, now_of(clock))
    return True
