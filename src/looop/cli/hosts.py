"""`looop host add|ls|rm|check|install` (SSH hosts for workers), and the hidden plumbing:
`looop host relay` (the home end of a host's contract channel) and `looop satellite`
(what the home runs on a host, JSON in and out). See docs/HOSTS.md."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from looop.cli.app import make_ctx, process_env
from looop.cli.ctxbuild import ctx_for
from looop.core.errors import LooopError
from looop.workers.ssh import hosts as reg


@click.group("host", help="SSH hosts that run workers: add, ls, rm, check, install.")
def host_group() -> None:
    pass


@host_group.command("add", help="Register host NAME at ssh://user@host[:port].")
@click.argument("name")
@click.argument("url")
@click.option("--cap", type=click.IntRange(0, 10_000), default=0, help="Most workers (0: none).")
@click.option("--ssh-config", default=None, metavar="FILE", help="ssh -F FILE for this host.")
def host_add(name: str, url: str, cap: int, ssh_config: str | None) -> None:
    ctx = make_ctx(events_to=None)
    h = reg.add(ctx.paths.data, name, url, cap, ssh_config)
    click.echo(f"added host {h.name} {h.url}" + (f" (cap {h.cap})" if h.cap else ""))
    click.echo(f"  next: looop host check {h.name}")


@host_group.command("ls", help="List the registered hosts and their workers.")
@click.option("--json", "as_json", is_flag=True)
def host_ls(as_json: bool) -> None:
    from looop.workers.ssh.place import loads  # lazy: only ls counts workers

    ctx = make_ctx(events_to=None)
    rows = [
        {"name": h.name, "url": h.url, "cap": h.cap, "workers": n} for h, n in loads(ctx.paths.data)
    ]
    if as_json:
        click.echo(json.dumps(rows, sort_keys=True))
        return
    if not rows:
        click.echo("no hosts — `looop host add NAME ssh://user@host`")
        return
    for r in rows:
        cap = str(r["cap"]) if r["cap"] else "-"
        click.echo(f"{r['name']:<16} {r['url']:<40} cap {cap:<5} workers {r['workers']}")


@host_group.command("rm", help="Forget host NAME (and close its connection).")
@click.argument("name")
@click.option("--force", is_flag=True, help="Even while it runs workers.")
def host_rm(name: str, force: bool) -> None:
    # lazy: only this path needs it (keeps the verbs that skip it light)
    from looop.workers.ssh.link import link

    ctx = make_ctx(events_to=None)
    lk = link(ctx, name)
    live = [
        w for w, r in reg.records(ctx.paths.data).items() if r["host"] == name and not r.get("over")
    ]
    if live and not force:
        raise LooopError(
            f"host {name} runs {len(live)} worker(s) ({', '.join(live[:5])}) — kill them "
            "first, or `looop host rm --force` leaves them running there unwatched"
        )
    lk.stop_master()
    reg.remove(ctx.paths.data, name)
    click.echo(f"removed host {name}")


@host_group.command("check", help="Connect to NAME and check the looop installed there.")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def host_check(name: str, as_json: bool) -> None:
    # lazy: only this path needs it (keeps the verbs that skip it light)
    from looop import __version__
    from looop.workers.ssh.link import PROTOCOL, link

    ctx = make_ctx(events_to=None)
    lk = link(ctx, name)
    hello = lk.call("hello", {})
    theirs = hello.get("version")
    ok = theirs == __version__ and hello.get("protocol") == PROTOCOL
    if as_json:
        click.echo(json.dumps({"host": name, "ok": ok, **hello}, sort_keys=True))
    elif ok:
        click.echo(
            f"{name}: ok — looop {theirs} (Python {hello.get('python')}), {hello.get('dir')}"
        )
    if not ok:
        raise LooopError(
            f"host {name} runs looop {theirs}, this home {__version__} — "
            f"run `looop host install {name}`"
        )


@host_group.command("install", help="Install this looop into a user-level venv on NAME.")
@click.argument("name")
@click.option("--wheel", type=click.Path(dir_okay=False, path_type=Path), default=None)
def host_install(name: str, wheel: Path | None) -> None:
    # lazy: only this path needs it (keeps the verbs that skip it light)
    import looop
    from looop.workers.ssh.install import Build, install
    from looop.workers.ssh.link import link

    ctx = make_ctx(events_to=None)
    where = install(link(ctx, name), wheel, Build(looop.__version__, looop.__file__))
    click.echo(f"installed looop on {name} in {where}")
    click.echo(f"  next: looop host check {name}")


@host_group.command("relay", hidden=True)
@click.argument("name")
@click.argument("path")
def host_relay(name: str, path: str) -> None:
    # lazy: only this path needs it (keeps the verbs that skip it light)
    from looop.workers.ssh.relay import serve

    ctx = make_ctx(events_to=None)
    reg.get(ctx.paths.data, name)
    raise SystemExit(serve(ctx, name, path))


@click.command(
    "satellite",
    hidden=True,
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.argument("key")
@click.argument("op")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def satellite_cmd(key: str, op: str, args: tuple[str, ...]) -> None:
    # lazy: only this path needs it (keeps the verbs that skip it light)
    from looop.cli.app import process_clock
    from looop.workers.ssh.satellite import handle, satellite_dir

    env = dict(process_env())
    env["LOOOP_DATA_DIR"] = str(satellite_dir(env, key))
    env.pop("LOOOP_CONFIG", None)
    if op == "run":
        argv = list(args[1:] if args[:1] == ("--",) else args)
        ctx = ctx_for(env, process_clock(env), None)
        os.execve(ctx.bin, [ctx.bin, *argv], env)
    ctx = ctx_for(env, process_clock(env), None)
    raw = sys.stdin.read()
    try:
        req = json.loads(raw or "{}")
    except ValueError:
        req = None
    # lazy: only this path needs it (keeps the verbs that skip it light)
    from looop import __version__

    out = handle(ctx, op, req if isinstance(req, dict) else {}, __version__)
    sys.stdout.write(json.dumps(out) + "\n")
