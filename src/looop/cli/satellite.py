"""`looop satellite KEY OP` (hidden): what the home runs on an SSH host, JSON in and out, one
process per remote verb (remote/ssh/satellite.py holds the ops, start.py the start ones).
Its own module, so that process loads only what its op needs, not the host verbs' SSH and
Kubernetes machinery."""

from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING, cast

import click

import looop
from looop.cli.commands import process_clock, process_env
from looop.core.context import ctx_for
from looop.home import jsonio
from looop.remote.ssh.link import PROTOCOL
from looop.remote.ssh.satellite import (
    CHANGE_VERBS,
    START_VERBS,
    THERE_VERBS,
    handle,
    satellite_dir,
)

if TYPE_CHECKING:
    from looop.remote.ssh.satellite import Verbs


# The ops a module of their own serves, loaded by name (as the verb table loads a verb): a
# start's (`hello`, `spawn`, `verify`) and a worker's `diff` need git, worktrees and srt (~50
# ms), a far worker's review, resume and land git and the landing (~35 ms); `ls`, `screen`,
# `send` & co. are remote/ssh/satellite.py's own and load neither; the relay's server (~6 ms)
# only the long-lived bridge.
SERVED_BY = {
    **dict.fromkeys(THERE_VERBS, "looop.act.landthere:there_verb"),
    **dict.fromkeys((*START_VERBS, *CHANGE_VERBS), "looop.remote.ssh.start:start_verb"),
    "bridge": "looop.remote.ssh.boxed:bridge_verb",
}


def _served_by(op: str) -> Verbs | None:
    module, _, name = SERVED_BY.get(op, ":").partition(":")
    return cast("Verbs", getattr(importlib.import_module(module), name)) if module else None


@click.command(
    "satellite",
    hidden=True,
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.argument("key")
@click.argument("op")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def satellite_cmd(key: str, op: str, args: tuple[str, ...]) -> None:
    env = dict(process_env())
    env["LOOOP_DATA_DIR"] = str(satellite_dir(env, key))
    env.pop("LOOOP_CONFIG", None)
    ctx = ctx_for(env, process_clock(env), None)
    if op == "run":
        argv = list(args[1:] if args[:1] == ("--",) else args)
        os.execve(ctx.bin, [ctx.bin, *argv], env)
    if op == "bridge":  # sandboxed workers' way home, long-lived: it reads no request
        cast("Verbs", _served_by(op))(ctx, ctx.paths.data, op, {}, "")
    raw = sys.stdin.read()
    try:
        req = jsonio.loads(raw or "{}")
    except ValueError:
        req = None
    body = req if isinstance(req, dict) else {}
    # the metadata read (~30 ms) only for the answers that carry the version
    version = looop.__version__ if op == "hello" or body.get("v") != PROTOCOL else ""
    out = handle(ctx, op, body, version, _served_by(op))
    sys.stdout.write(jsonio.dumps(out) + "\n")
