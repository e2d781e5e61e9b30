"""`looop told [WORKER]`: the face; the work and its parsing are home/tells.py's, shared with
click's face and the box's door."""

from __future__ import annotations

from looop.home.tells import parse_told, run_told

TYPE_CHECKING = False  # not `from typing`: a hot verb must not pay for it

if TYPE_CHECKING:
    from looop.home.clock import Clock


def serve(argv: list[str], env: dict[str, str], clock: Clock | None) -> bool:
    """`told [WORKER]` in its plain spellings."""
    told = parse_told(argv)
    if told is None:
        return False
    run_told(*told, env)
    return True
