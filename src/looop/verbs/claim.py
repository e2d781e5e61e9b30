"""`looop claim NAME [--session S]` and `looop unclaim NAME`: the face; the work and its parsing
are home/claims.py's, shared with click's face and the box's door."""

from __future__ import annotations

from looop.home.claims import parse_fast, run_lease
from looop.home.clock import now_of

TYPE_CHECKING = False  # not `from typing`: a hot verb must not pay for it

if TYPE_CHECKING:
    from looop.home.clock import Clock


def serve(argv: list[str], env: dict[str, str], clock: Clock | None) -> bool:
    """`claim`/`unclaim` in their plain spellings; exits with run_lease's code."""
    parsed = parse_fast(argv)
    if parsed is None:
        return False
    raise SystemExit(run_lease(*parsed, env, now_of(clock)))
