"""Lifecycle verbs: init, pulse, up, down, demo, doctor, and bare `looop` (the pulse started in
the background and its log streamed here, or one already running attached to; Ctrl-C or
SIGTERM stops only what it started). The read verbs are in cli/reads.py."""

from __future__ import annotations

import contextlib
import os
import signal as sig
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import click

from looop.cli.app import from_config, make_ctx
from looop.cli.commands import count, process_clock, process_env, seconds
from looop.core.context import Ctx, looop_bin
from looop.core.proctitle import show_role
from looop.core.webconfig import up_with_pulse
from looop.demo.run import run_demo
from looop.home import jsonio, revive
from looop.home.errors import LooopError
from looop.home.sessionfiles import any_live
from looop.home.terminal import colour_on
from looop.loop.daemon import PULSE, DownResult, UpResult, revive_pulse, start_detached, stop_all
from looop.loop.doctor import run_checks, summary
from looop.loop.heartbeat import trace_from_env
from looop.loop.pulse import Pulse
from looop.loop.setup import RUNNER_CHOICES, InitCancelled, init_config
from looop.runners.presets import DEFAULT_RUNNER
from looop.seed import ensure_data_dir
from looop.seed.pack import offers
from looop.sessions.client import follow
from looop.views.beatlog import beat_records, last_beat
from looop.views.status import beat_holder
from looop.web.daemon import WebUp, running, start_web, stop_web


@click.command("init", help="Choose the agent CLI that decides and works (writes the config).")
@click.option(
    "--runner",
    type=click.Choice(RUNNER_CHOICES),
    help=f"Preset to use (default: {DEFAULT_RUNNER}).",
)
@click.option("--tick-command", help="Override the one-shot decide command.")
@click.option("--worker-command", help="Override the worker launch command ({{prompt_file}}).")
@click.option("--force", is_flag=True, help="Overwrite an existing config.")
@click.option(
    "--sandbox/--no-sandbox",
    default=None,
    help="Run every worker inside srt's sandbox, or not (sets the config's `sandbox`).",
)
def init_cmd(
    runner: str | None,
    tick_command: str | None,
    worker_command: str | None,
    force: bool,
    sandbox: bool | None,
) -> None:
    ctx = make_ctx()
    interactive = sys.stdin.isatty() and sys.stdout.isatty() and runner is None
    try:
        res = init_config(
            ctx, runner, tick_command, worker_command, force, interactive, sandbox=sandbox
        )
    except InitCancelled as e:
        click.echo(f"\nlooop: {e}", err=True)  # the cursor sits after the question
        raise SystemExit(130) from None
    for line in res:
        click.echo(line)
    _offer_sensors(ctx)

    for line in summary(run_checks(ctx, running)):
        click.echo(line)


def _offer_sensors(ctx: Ctx) -> None:
    """The pack's sensors that fit what is here (a git repository, gh on PATH): offered as the
    commands that add them, never added unasked."""
    have = {p.stem for p in ctx.paths.sensors.glob("*.sh")} if ctx.paths.sensors.is_dir() else set()
    lines = offers(os.getcwd(), ctx.env.get("PATH", ""), have)
    if lines:
        click.echo("Sensors that fit here (`looop sensor add --list` shows the whole pack):")
        for line in lines:
            click.echo(f"  {line}")


@click.command("pulse", help="Run the loop in the foreground (for systemd, containers, debugging).")
@click.option("--ready-fd", type=int, default=None, hidden=True)
@click.option(
    "--beats",
    type=count(1),
    default=None,
    help="Stop after N beats (default: run until SIGTERM/SIGINT).",
)
@click.option("--no-seed", is_flag=True, hidden=True)
def pulse_cmd(ready_fd: int | None, beats: int | None, no_seed: bool) -> None:
    ctx = make_ctx(events_to="stdout")
    if no_seed and not ctx.paths.config.is_file():
        # `up` seeded this home before starting the pulse's session: a run restarted there
        # on a home that has since gone stops, rather than seeding a new one at its path
        click.echo(f"looop: {ctx.paths.config} is gone — not seeding it; `looop up` does", err=True)
        raise SystemExit(revive.HOME_LOST_EXIT)
    ensure_data_dir(ctx.paths)

    def ready() -> None:
        if ready_fd is not None:
            os.write(ready_fd, b"ok\n")
            os.close(ready_fd)

    def workers_alive() -> bool:  # the cadence, every beat: the first live worker answers
        try:
            return any_live(str(ctx.paths.data), but=PULSE)
        except OSError:
            return False

    try:
        trace = trace_from_env(ctx.env)
    except ValueError as e:
        click.echo(f"looop: {e}", err=True)
        raise SystemExit(2) from None
    if trace is not None:
        trace.start()
    pulse = Pulse(ctx, max_beats=beats, workers_alive=workers_alive, memtrace=trace)
    show_role(f"looop: pulse {ctx.paths.data}")
    raise SystemExit(pulse.run(ready=ready))


@click.command("up", help="Start the pulse in the background (idempotent).")
@click.option(
    "--json",
    "json_log",
    is_flag=True,
    help="Print what it did as one JSON object; the pulse logs NDJSON events.",
)
@click.option(
    "--web/--no-web",
    default=None,
    help="Also serve the dashboard beside it (default: the config's web.up).",
)
@click.option("--revive", is_flag=True, hidden=True)  # home/revive.py starts it, detached
def up_cmd(json_log: bool, web: bool | None, revive: bool) -> None:
    ctx = make_ctx()
    if revive:
        revive_pulse(ctx)
        return
    res = start_detached(ctx, json_log)
    state = "started" if res.started else "restarting" if res.restarting else "running"
    for wid, why in res.resumed:
        if why is not None:
            click.echo(f"looop: {why}", err=True)
        elif not json_log:
            click.echo(f"resumed worker {wid} on its conversation · looop shot {wid}")
    if not json_log:
        said = {
            "started": f"pulse started (pid {res.pid})",
            "restarting": f"pulse is restarting ({res.restarting})",
            "running": f"pulse already running (pid {res.pid})",
        }
        click.echo(f"{said[state]} · follow it: looop log pulse -f")
    if web is None:
        web = from_config(ctx, lambda cfg: up_with_pulse(cfg.raw), False)
    served = start_web(ctx, owned=True) if web else None
    if json_log:  # a script's `looop up --json`: the whole of stdout is one object
        click.echo(jsonio.dumps(_up_record(res, state, served), sort_keys=True))
    elif served is not None:
        up = "started" if served.started else "already running"
        click.echo(f"web {up} (pid {served.pid}) · {served.url}")


def _up_record(res: UpResult, state: str, served: WebUp | None) -> dict[str, Any]:
    """`up --json`: the pulse (started, running or restarting, and why), the workers resumed
    on their conversations (or why not) and the web server, if asked for."""
    pulse: dict[str, Any] = {"state": state, "pid": int(res.pid) if res.pid.isdigit() else None}
    if res.restarting:
        pulse["restarting"] = res.restarting
    up = "started" if served is not None and served.started else "running"
    web = None if served is None else {"state": up, "pid": served.pid, "url": served.url}
    return {
        "pulse": pulse,
        "log": res.log,
        "resumed": [{"id": wid, "error": why} for wid, why in res.resumed],
        "web": web,
    }


@click.command("down", help="Stop the pulse (its beat finishes first), then every worker.")
@click.option(
    "--grace",
    type=seconds(0, 86400),
    default=30.0,
    show_default=True,
    help="Seconds to let the current beat finish before the pulse is killed.",
)
@click.option("--keep-workers", is_flag=True, help="Stop only the pulse; workers keep running.")
def down_cmd(grace: float, keep_workers: bool) -> None:
    ctx = make_ctx()
    res = stop_all(ctx, grace, keep_workers=keep_workers)
    web_pid = stop_web(ctx, only_owned=True)  # the one `up --web` started, never another
    if web_pid is not None:
        click.echo(f"web stopped (pid {web_pid})")
    elif (other := running(ctx)) is not None:
        click.echo(f"left web (pid {other['pid']}) running: `up` did not start it")
    if res.tick_pid:
        click.echo(
            f"pulse is not running · a foreground `looop tick` (pid {res.tick_pid}) holds "
            "the beat and ends on its own"
        )
    elif not res.was_running and not res.strays:
        click.echo("pulse is not running")
    elif res.forced:
        click.echo(f"pulse (pid {res.pid}) did not finish its beat in {grace:g}s: killed")
    else:
        click.echo(f"pulse stopped (pid {res.pid})")
    if res.strays:
        click.echo(
            f"stopped a pulse of a removed or replaced data dir (pid {', '.join(res.strays)})"
        )
    if res.workers:
        click.echo(f"stopped {len(res.workers)} worker(s): {', '.join(res.workers)}")
    if res.orphans:
        click.echo(
            f"stopped {len(res.orphans)} worker(s) of a removed or replaced data dir "
            f"(pid {', '.join(res.orphans)})"
        )
    if res.kept:
        click.echo(
            f"left {len(res.kept)} worker(s) running: {', '.join(res.kept)} "
            "(`looop down` stops them)"
        )
    for line in res.survivors_far:
        click.echo(f"looop: {line}", err=True)
    if res.leftovers:
        raise LooopError(
            f"processes of {', '.join(res.leftovers)} outlived SIGKILL (stuck in the kernel?) "
            "— look for them with `ps -eo pid,stat,args`"
        )
    if res.survivors:
        raise LooopError(
            f"still alive after down: {', '.join(res.survivors)} — inspect with "
            "`looop worker list -a`"
        )


@click.command("demo", help="An offline demo in a throwaway data dir (scripted runner).")
@click.option(
    "--keep/--no-keep",
    default=True,
    show_default=True,
    help="Keep the throwaway data dir to explore afterwards.",
)
@click.option("--fast", is_flag=True, help="No pauses between beats.")
def demo_cmd(keep: bool, fast: bool) -> None:
    env = process_env()
    raise SystemExit(run_demo(env, process_clock(env), looop_bin(env), keep=keep, fast=fast))


@click.command(
    "doctor",
    help="Check what a run depends on: config, runner CLI, data dir, sandbox, budget, model "
    "endpoint, hosts, web, service. One line each (✓ ok, ! warning, ✗ failing, with the fix); "
    "exits 1 when a check fails.\n\n\b\nExamples:\n  looop doctor\n  looop doctor --json",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the checks as a JSON list of {name, ok, level, detail, fix}.",
)
def doctor_cmd(as_json: bool) -> None:
    ctx = make_ctx(events_to=None)
    # the config check says what is wrong with the config; its stderr warning would say it twice
    ctx = replace(ctx, events=replace(ctx.events, warn_to=None))
    checks = run_checks(ctx, running)
    if as_json:
        click.echo(jsonio.dumps([c.as_json() for c in checks], ensure_ascii=False))
    else:
        for c in checks:
            click.echo(c.line())
    if not all(c.ok for c in checks):
        raise SystemExit(1)


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
        else:
            now = f"the pulse is restarting ({res.restarting})" if res.restarting else ""
            now = now or f"pulse already running (pid {res.pid})"
            click.echo(f"looop: {now} — attaching; Ctrl-C detaches (`looop down` stops it)")

        def out(text: str) -> None:
            sys.stdout.write(text)
            sys.stdout.flush()

        follow(ctx.paths.data, PULSE, 0, True, out, ctx.clock)
    except KeyboardInterrupt:
        pass
    finally:
        sig.signal(sig.SIGTERM, sig.SIG_IGN)  # a second SIGTERM must not cut the teardown short
        if owner:  # the second Ctrl-C is handled before the line that invites it is said
            sig.signal(sig.SIGINT, lambda _s, _f: _abandon(ctx))
            click.echo(f"looop: stopping — {_waiting(ctx)}; a second Ctrl-C abandons the beat")
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
