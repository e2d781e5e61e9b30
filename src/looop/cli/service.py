"""`looop service install|uninstall|status`: the pulse kept running by systemd or launchd."""

from __future__ import annotations

import os
import subprocess
import sys

import click

from looop.cli.app import make_ctx
from looop.core.context import Ctx
from looop.home import store
from looop.home.where import program_on
from looop.loop.service import (
    Service,
    commands,
    default_name,
    install,
    linger_fix,
    render,
    uninstall,
)


def _service(name: str | None) -> tuple[Ctx, Service]:
    ctx = make_ctx(events_to=None)
    argv = [sys.executable, "-m", "looop", "pulse"]
    return ctx, render(ctx, name or default_name(ctx), argv, sys.platform)


def _systemd_here(ctx: Ctx, svc: Service) -> bool:
    """A user systemd to talk to: systemctl on PATH and a user bus in the runtime dir."""
    runtime = ctx.env.get("XDG_RUNTIME_DIR", "")
    return (
        svc.kind == "systemd"
        and program_on("systemctl", ctx.env.get("PATH")) is not None
        and bool(runtime)
        and os.path.exists(f"{runtime}/systemd/private")
    )


def _act(ctx: Ctx, svc: Service, action: str, run: bool) -> None:
    steps = commands(svc, action)
    if run and _systemd_here(ctx, svc):
        for step in steps:
            r = subprocess.run(step.split(), env=dict(ctx.env), check=False, timeout=60)
            if r.returncode != 0:
                click.echo(f"looop: `{step}` failed (exit {r.returncode})", err=True)
                raise SystemExit(1)
            click.echo(f"ran: {step}")
        return
    click.echo("now run:")
    for step in steps:
        click.echo(f"  {step}")


service_group = click.Group(
    "service", help="Run the pulse for good under systemd (or launchd on macOS)."
)


_name = click.option("--name", default=None, help="Unit name after looop- (default: per data dir).")
_run = click.option(
    "--run/--no-run",
    default=True,
    help="Run systemctl when a user systemd is there (else print what to run).",
)


@service_group.command("install", help="Write the unit (Restart=on-failure, watchdog).")
@_name
@_run
@click.option("--print", "show", is_flag=True, help="Print the unit instead of writing it.")
def install_cmd(name: str | None, run: bool, show: bool) -> None:
    ctx, svc = _service(name)
    if show:
        click.echo(svc.text, nl=False)
        return
    changed = install(svc)
    click.echo(f"{'wrote' if changed else 'unchanged'}: {svc.path}")
    _act(ctx, svc, "install", run)
    fix = linger_fix(ctx, svc)
    if fix is not None:
        click.echo(f"note: a user unit stops when you log out; `{fix}` keeps the pulse up")


@service_group.command("uninstall", help="Remove the unit (stop and disable it first).")
@_name
@_run
def uninstall_cmd(name: str | None, run: bool) -> None:
    ctx, svc = _service(name)
    if run and _systemd_here(ctx, svc):
        _act(ctx, svc, "uninstall", run)
        uninstall(svc)
        click.echo(f"removed: {svc.path}")
        return
    gone = uninstall(svc)
    click.echo(f"removed: {svc.path}" if gone else f"not installed: {svc.path}")
    if gone:
        _act(ctx, svc, "uninstall", False)


@service_group.command("status", help="Whether the unit is installed and current.")
@_name
def status_cmd(name: str | None) -> None:
    ctx, svc = _service(name)
    have = store.read_text(svc.path)
    if have is None:
        click.echo(f"not installed: {svc.path} (`looop service install`)")
    elif have == svc.text:
        click.echo(f"installed: {svc.path} ({svc.kind} {svc.name})")
    else:
        click.echo(f"installed but stale: {svc.path} — `looop service install` rewrites it")
    if have is not None and _systemd_here(ctx, svc):
        subprocess.run(
            ["systemctl", "--user", "status", "--no-pager", svc.name],
            env=dict(ctx.env),
            check=False,
            timeout=30,
        )
