"""Bare `looop`: the pulse started in the background and its log streamed here, or a pulse
already running attached to. Ctrl-C (or SIGTERM) stops only what this command started."""

from __future__ import annotations

import contextlib
import os
import signal as sig
import sys
from collections.abc import Callable

import click

from looop.cli.app import make_ctx
from looop.core.context import Ctx
from looop.home.errors import LooopError
from looop.home.terminal import colour_on
from looop.loop.daemon import PULSE, DownResult, start_detached, stop_all
from looop.sessions.client import follow
from looop.views.beatlog import beat_records, last_beat
from looop.views.status import beat_holder


def foreground() -> int:
    """Bare `looop`: start the pulse and stream its log, or attach to one already running.
    Ctrl-C (or SIGTERM) stops only what this command started; a viewer merely detaches."""
    ctx = make_ctx()
    tty = sys.stdout.isatty()
    res = start_detached(ctx, color=colour_on(tty, ctx.env))
    owner = res.started  # this command started the pulse: its Ctrl-C stops it

    def on_term(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    old = sig.signal(sig.SIGTERM, on_term)
    code = 0
    try:  # before the line that says what Ctrl-C does: a Ctrl-C right after it is handled
        if owner:
            click.echo(f"looop: pulse started (pid {res.pid}) — streaming; Ctrl-C stops everything")
        elif res.restarting:
            click.echo(
                f"looop: the pulse is restarting ({res.restarting}) — attaching; Ctrl-C detaches "
                "(`looop down` stops it)"
            )
        else:
            click.echo(
                f"looop: pulse already running (pid {res.pid}) — attaching; Ctrl-C detaches "
                "(`looop down` stops it)"
            )

        def out(text: str) -> None:
            sys.stdout.write(text)
            sys.stdout.flush()

        follow(ctx.paths.data, PULSE, 0, True, out, ctx.clock)
    except KeyboardInterrupt:
        pass
    finally:
        sig.signal(sig.SIGTERM, sig.SIG_IGN)  # a second SIGTERM must not cut the teardown short
        if owner:
            click.echo(f"looop: stopping — {_waiting(ctx)}; a second Ctrl-C abandons the beat")
            sig.signal(sig.SIGINT, lambda _s, _f: _abandon(ctx))
            try:
                code = _tear_down(ctx, stop_all)
            finally:
                sig.signal(sig.SIGINT, sig.default_int_handler)
        else:
            click.echo("looop: detached; the pulse runs on (`looop down` stops it)")
        sig.signal(sig.SIGTERM, old)
    return code


def _waiting(ctx: Ctx) -> str:
    """What the stop waits for, as the pulse's events.jsonl tells it."""
    beat = last_beat(beat_records(str(ctx.paths.data)), ctx.clock, holding=True)
    outcome = beat["outcome"] if beat is not None else ""
    return {
        "deciding": "waiting for the pulse's runner to decide",
        "running": "waiting for the pulse to finish its beat",
    }.get(outcome, "waiting for the pulse to stop")


def _abandon(ctx: Ctx) -> None:
    """A second Ctrl-C: the pulse's second stop abandons its decide (loop/pulse.py)."""
    holder = beat_holder(ctx.paths)
    if holder is not None and holder[1].isdigit():
        os.write(1, "looop: Ctrl-C again — abandoning the pulse's beat; no move runs\n".encode())
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(holder[1]), sig.SIGINT)


def _tear_down(ctx: Ctx, stop_all: Callable[[Ctx], DownResult]) -> int:
    try:
        down = stop_all(ctx)
    except LooopError as e:
        click.echo(f"looop: teardown failed: {e}", err=True)
        return 1
    if down.workers:
        click.echo(f"looop: stopped {len(down.workers)} worker(s) ({', '.join(down.workers)})")
    click.echo("looop: pulse stopped")
    if down.survivors:
        click.echo(f"looop: still alive: {', '.join(down.survivors)}", err=True)
        return 1
    return 0
