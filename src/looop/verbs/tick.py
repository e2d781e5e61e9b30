"""`looop tick` (no flags, or --force) without click: the beat, its exit code and its words.

The click verb calls the same `run_tick`, so both paths print, exit and write alike. A skip
beat loads only sensing and hashing; the decide machinery loads once the world changed."""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from looop.home.clock import Clock

# the beat did not do its work: it failed, erred (a broken config too), or a spend breaker held
# the decide (its line is on stderr); a forced beat that met a usage limit did not decide either
FAILED = ("failed", "error", "budget", "capped")
BACKOFF_HINT = "looop: backing off after failed beats — `looop tick --force` runs now\n"


def parse_fast(argv: list[str]) -> bool | None:
    """`force` for the plain shapes (`tick`, `tick --force`); None sends the rest to click."""
    if argv == ["tick"]:
        return False
    if argv == ["tick", "--force"]:
        return True
    return None


def run_tick(env: dict[str, str], clock: Clock | None, force: bool) -> None:
    """One foreground beat; SystemExit(1) when it failed or erred."""
    # lazy: the beat's door, passed once the argv is a beat's: a mistyped verb never pays
    from looop.cli.tickwork import beat_here

    status = beat_here(env, clock, force)
    if status in FAILED or (force and status == "limited"):
        raise SystemExit(1)
    if status == "backoff":
        sys.stderr.write(BACKOFF_HINT)


def serve(argv: list[str], env: dict[str, str], clock: Clock | None) -> bool:
    """`tick [--force]`: the beat, in this process."""
    force = parse_fast(argv)
    if force is None:
        return False
    run_tick(env, clock, force)
    return True
