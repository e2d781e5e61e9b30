"""`looop pod …` (hidden): plumbing the Kubernetes backend runs inside a worker's container
(remote/kube/podrun.py) — never typed by a human."""

from __future__ import annotations

import base64
import signal
import sys
import time
from pathlib import Path

import click

from looop.act.landthere import pod_change
from looop.cli.app import make_ctx
from looop.cli.commands import process_env
from looop.core.context import Ctx
from looop.home import jsonio
from looop.home.errors import LooopError
from looop.remote.kube import podrun

POD_MARK = "LOOOP_POD"  # set by the Job manifest (remote/kube/manifests.py)


def _in_pod() -> Ctx:
    """The Ctx a pod verb runs on; refused outside a worker's container."""
    if process_env().get(POD_MARK) != "1":
        raise LooopError(
            "`looop pod` is plumbing for a Kubernetes worker's container: it runs there only"
        )
    return make_ctx(events_to=None)


pod_group = click.Group("pod", hidden=True, help="Plumbing inside a Kubernetes worker's container.")


def _size(spelled: str) -> tuple[int, int]:
    cols, _, rows = spelled.partition("x")
    ok = cols.isdigit() and rows.isdigit() and 0 < int(cols) <= 1000 and 0 < int(rows) <= 500
    if not ok:
        raise click.BadParameter(f"'{spelled[:40]}' is not COLSxROWS", param_hint="--size")
    return int(cols), int(rows)


@pod_group.command("run", help="Run one session in the foreground; its output to stdout.")
@click.option("--id", "sid", required=True)
@click.option("--size", default="80x24", show_default=True)
@click.argument("argv", nargs=-1, required=True, type=click.UNPROCESSED)
def run_cmd(sid: str, size: str, argv: tuple[str, ...]) -> None:
    ctx = _in_pod()
    stop: list[int] = []
    # SIGTERM is the Job being deleted: end the session, drain its log, then exit
    signal.signal(signal.SIGTERM, lambda n, f: stop.append(n))
    signal.signal(signal.SIGINT, lambda n, f: stop.append(n))
    env = ctx.child_env({"LOOOP_SESSION_ID": sid})
    env["LOOOP_BIN"] = str(podrun.contract_shim(ctx.paths.data, ctx.bin))
    names = [n for n in ctx.env.get(podrun.CHECKOUTS_ENV, "").split(",") if n]
    podrun.record_checkouts(ctx, sid, str(Path.cwd()), names)  # its clones, as review reads them
    code = podrun.run(
        ctx.paths.data,
        sid,
        list(argv),
        cwd=Path.cwd(),
        env=env,
        size=_size(size),
        out=sys.stdout.buffer,
        stopping=lambda: bool(stop),
        pause=time.sleep,
        max_pids=ctx.knobs().num("worker_max_pids"),  # the home's, by the Job's env
    )
    sys.exit(code)


@pod_group.command("send", help="Type base64 bytes into a session (the home's send and key).")
@click.option("--id", "sid", required=True)
@click.option("--b64", required=True)
@click.option("--newline", is_flag=True)
def send_cmd(sid: str, b64: str, newline: bool) -> None:
    ctx = _in_pod()
    click.echo(jsonio.dumps(podrun.send(ctx.paths.data, sid, b64, newline), sort_keys=True))


@pod_group.command("change", help="Read or land the worker's change here (JSON in and out).")
@click.argument("op", type=click.Choice(["review", "diff", "land", "unpush"]))
@click.option("--b64", required=True, help="The request: a JSON object, base64.")
def change_cmd(op: str, b64: str) -> None:
    ctx = _in_pod()
    try:
        req = jsonio.loads(base64.b64decode(b64.encode("ascii"), validate=True))
        if not isinstance(req, dict):
            raise ValueError("not an object")
    except ValueError:
        click.echo(jsonio.dumps({"error": "pod change: --b64 is not a base64 JSON object"}))
        return
    try:
        got = pod_change(ctx, op, req)
    except LooopError as e:  # said to the home as an answer: its one line, not a traceback
        got = {"error": str(e)}
    click.echo(jsonio.dumps(got, ensure_ascii=True))
