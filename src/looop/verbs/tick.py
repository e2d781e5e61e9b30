"""`looop tick` (no flags, or --force) without click: the beat, its exit code and its words.

The click verb calls the same `run_tick` (cli/tickwork.py), so both paths print, exit and write
alike. A skip beat loads only sensing and hashing; the decide machinery loads once the world
changed."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from looop.home.clock import Clock


def parse_fast(argv: list[str]) -> bool | None:
    """`force` for the plain shapes (`tick`, `tick --force`); None sends the rest to click."""
    if argv == ["tick"]:
        return False
    if argv == ["tick", "--force"]:
        return True
    return None


def serve(argv: list[str], env: dict[str, str], clock: Clock | None) -> bool:
    """`tick [--force]`: the beat, in this process."""
    force = parse_fast(argv)
    if force is None:
        return False
    # lazy: the beat's door, passed once the argv is a beat's: a mistyped verb never pays
    from looop.cli.tickwork import run_tick

    run_tick(env, clock, force)
    return True
