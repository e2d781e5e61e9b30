"""`looop tick`, run in this process: the Ctx built, the data dir seeded, one beat, its
notifications delivered; a skip beat loads only click and what loop/tick.py loads at its top
(tests/integration/test_tick_fast.py)."""

from __future__ import annotations

import os
import signal
import sys
import tempfile
from pathlib import Path
from types import FrameType

import click

from looop.cli.app import make_ctx
from looop.home.errors import LooopError
from looop.loop.beat import dry_run_ctx
from looop.loop.tick import tick, tick_once
from looop.seed import ensure_data_dir

# the beat did not do its work: it failed, erred (a broken config too), or a spend breaker held
# the decide (its line is on stderr); a forced beat that met a usage limit did not decide either
FAILED = ("failed", "error", "budget", "capped")
BACKOFF_HINT = "looop: backing off after failed beats — `looop tick --force` runs now\n"


def _beat_here(force: bool) -> str:
    """One foreground beat; its outcome's status."""
    ctx = make_ctx(events_to="stderr")
    ensure_data_dir(ctx.paths)

    def on_int(_signum: int, _frame: FrameType | None) -> None:
        if not ctx.interrupt.deciding:
            raise KeyboardInterrupt  # no runner is deciding: the beat stops at once, as ever
        said = ctx.interrupt.press()  # a second abandons the decide
        if said is not None:  # unbuffered: the beat may be writing to stderr right now
            os.write(2, f"looop: Ctrl-C — {said}\n".encode())

    old = signal.signal(signal.SIGINT, on_int)
    try:
        out = tick_once(ctx, force)
    finally:
        signal.signal(signal.SIGINT, old)
        # a beat's notifications reach their endpoints before `looop tick` ends (bounded)
        notify = sys.modules.get("looop.human.notify")  # loaded only when the beat notified
        if notify is not None:
            notify.drain()
    if out.status in ("failed", "error"):
        return out.status
    try:  # a skip never reaches the beat's config gate: a script must still learn of it
        ctx.config()
    except LooopError as e:
        sys.stderr.write(f"looop: {' '.join(str(e).split())} — no beat can decide until then\n")
        return "error"
    return out.status


@click.command("tick", help="Run one beat now (refused while a pulse runs).")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Sense and print the prompt; call no runner, write nothing (exit 1 when no prompt "
    "could be built, with why).",
)
@click.option(
    "--force", is_flag=True, help="Decide even if the world is unchanged or failures back off."
)
def tick_cmd(dry_run: bool, force: bool) -> None:
    if dry_run:
        _dry_run_tick()
        return

    status = _beat_here(force)
    if status == "abandoned":
        raise SystemExit(130)  # a human's Ctrl-C ended it
    if status in FAILED or (force and status == "limited"):
        raise SystemExit(1)
    if status == "backoff":
        sys.stderr.write(BACKOFF_HINT)


def _dry_run_tick() -> None:
    """Sense into a scratch dir and print the prompt: no lock, no seeding, no writes, so it
    works beside a running pulse and on a read-only data dir."""

    base = make_ctx(events_to="stderr")
    if not base.paths.data.is_dir():
        raise LooopError(
            f"data dir {base.paths.data} is not usable for a dry run (no such directory) — "
            "create it with `looop init`, or point LOOOP_DATA_DIR at an existing one"
        )
    with tempfile.TemporaryDirectory(prefix="looop-dry-run-") as scratch:
        out = tick(dry_run_ctx(base, Path(scratch)), dry_run=True)
    if out.prompt_text is not None:
        sys.stdout.write(out.prompt_text)
        return
    click.echo(
        f"(no prompt: the beat stopped at '{out.status}'"
        + (f": {out.error}" if out.error else "")
        + ")",
        err=True,
    )
    raise SystemExit(1)  # a script's `tick --dry-run > prompt.md` must not take '' for a prompt
