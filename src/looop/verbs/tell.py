"""`looop tell WORKER MSG...`: the face; the work and its parsing are home/tellsend.py's,
shared with click's face and the box's door."""

from __future__ import annotations

from looop.home.clock import now_of
from looop.home.tellsend import parse_tell, run_tell

TYPE_CHECKING = False  # not `from typing`: a hot verb must not pay for it

if TYPE_CHECKING:
    from looop.home.clock import Clock


def serve(argv: list[str], env: dict[str, str], clock: Clock | None) -> bool:
    """`tell WORKER MESSAGE…` in its plain spelling."""
    tell = parse_tell(argv)
    if tell is None:
        return False
    run_tell(*tell, env, now_of(clock))
    return True
