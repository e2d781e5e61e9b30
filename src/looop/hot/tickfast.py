"""`looop tick` (no flags, or --force) without click: the beat, its exit code and its words.

The click verb calls the same `run_tick`, so both paths print, exit and write alike. A skip
beat loads only sensing and hashing; the decide machinery loads once the world changed."""

from __future__ import annotations

import sys

from looop.hot.beatclient import hand_over

TYPE_CHECKING = False
if TYPE_CHECKING:
    from looop.hot.clock import Clock

BACKOFF_HINT = "looop: backing off after failed beats — `looop tick --force` runs now\n"


def parse_fast(argv: list[str]) -> bool | None:
    """`force` for the plain shapes (`tick`, `tick --force`); None sends the rest to click."""
    if argv == ["tick"]:
        return False
    if argv == ["tick", "--force"]:
        return True
    return None


def run_tick(
    env: dict[str, str], clock: Clock | None, force: bool, caller: int | None = None
) -> None:
    """One foreground beat; SystemExit(1) when it failed or erred. `caller`: the pid named
    as the beat's holder when it is not this process (the beat host's caller)."""
    # lazy: loaded after the argv check, so a mistyped verb never pays for the beat
    from looop.cli.ctxbuild import ctx_for
    from looop.hot.clock import clock_for
    from looop.loop.tick import tick_once
    from looop.seed import ensure_data_dir

    ctx = ctx_for(env, clock_for(env, clock), events_to="stderr")
    ensure_data_dir(ctx.paths)
    try:
        out = tick_once(ctx, force, caller)
    finally:
        _deliver_notifications()
    if out.status in ("failed", "error"):
        raise SystemExit(1)
    if out.status == "backoff":
        sys.stderr.write(BACKOFF_HINT)


def _deliver_notifications() -> None:
    """A beat's notifications reach their endpoints before `looop tick` ends (bounded), also
    when the beat host's child ends it with os._exit, which skips atexit."""
    notify = sys.modules.get("looop.human.notify")  # loaded only when the beat notified
    if notify is not None:
        notify.drain()


def serve(
    argv: list[str], env: dict[str, str], clock: Clock | None, caller: int | None = None
) -> bool:
    """`tick [--force]`: a child of the beat host runs the beat when one answers (its imports
    paid once), else this process does; an injected clock (tests, the host's own child)
    always beats here."""
    force = parse_fast(argv)
    if force is None:
        return False
    hand_over(argv, env, clock)
    run_tick(env, clock, force, caller)
    return True
