"""The verbs that block until a human: `looop ask` (a worker's question; stdout is only the
answer) and `looop wait` (until a session ends, or the world needs a human). Their own family:
the waits, the notice and the world's watch they load are no part of reading or driving a
session (cli/sessionwatch.py) or listing asks (cli/mailbox.py)."""

from __future__ import annotations

import sys

import click

from looop.cli import idcomplete
from looop.cli.app import make_ctx
from looop.cli.sessions import duration_arg, target_sid, way_at
from looop.core.context import Ctx
from looop.home import jsonio
from looop.home.errors import LooopError
from looop.home.reqkey import request_key
from looop.home.stamps import utc_stamp_ms
from looop.human.askwait import await_answer
from looop.human.mailbox import keyed_ask, new_ask
from looop.human.notify import notify
from looop.human.tellbox import check_worker, id_number
from looop.loop.asks import wait_for_human
from looop.sessions.state import get_session, mark_dead
from looop.views.status import gather_status
from looop.views.statustext import add_v1_fields, print_status


@click.command("ask", help="Ask a human and wait: prints only the answer on stdout.")
@click.argument("worker", required=False, shell_complete=idcomplete.workers)
@click.option("--prompt", "-p", default=None, help="The one question to answer.")
@click.option("--ref", default=None, help="A file or URL the human should look at.")
@click.option(
    "--options",
    multiple=True,
    help="Choices, comma-separated (yes,no); given again, it adds more (v1.0).",
)
@click.option(
    "--wait",
    "wait_id",
    default=None,
    metavar="ASK_ID",
    help="Wait again for the answer to your own pending ask (a resumed worker's).",
)
def ask_cmd(
    worker: str | None,
    prompt: str | None,
    ref: str | None,
    options: tuple[str, ...],
    wait_id: str | None,
) -> None:
    ctx = make_ctx(events_to=None)
    who = _asking_worker(ctx, worker, prompt, wait_id)
    ask_id = _the_ask(ctx, who, prompt, ref, options, wait_id)
    _wait_and_print(ctx, who, ask_id)


def _asking_worker(ctx: Ctx, worker: str | None, prompt: str | None, wait_id: str | None) -> str:
    """The worker that asks (named, or the one this runs inside), once the flags make sense."""
    if (prompt is None) == (wait_id is None):
        raise LooopError(
            "give --prompt (a new question) or --wait ASK_ID (an earlier one), one of them"
        )

    who = worker or ctx.env.get("LOOOP_SESSION_ID", "")
    if not who:
        raise LooopError(
            "name the asking worker (`looop ask WORKER --prompt …`) or run it "
            "inside a worker (LOOOP_SESSION_ID)"
        )
    check_worker(who, "worker id" if worker else "LOOOP_SESSION_ID")
    return who


def _the_ask(
    ctx: Ctx,
    who: str,
    prompt: str | None,
    ref: str | None,
    options: tuple[str, ...],
    wait_id: str | None,
) -> str:
    """The id of the ask to wait on: the one named by --wait, the one this request already
    asked, or a new one (recorded and notified)."""
    p = ctx.paths
    # set by the home for a worker away from home (contract/requests.py): one ask per request
    key = request_key(ctx.env)[0]
    earlier = keyed_ask(p.asks, who, key) if key and wait_id is None else None
    if wait_id is not None:
        return _own_pending(ctx, who, wait_id)["id"]
    if earlier is not None:
        return earlier  # this request asked already: wait on that question
    assert prompt is not None
    opts = [o.strip() for given in options for o in given.split(",") if o.strip()]
    rec = new_ask(p.asks, p.answers, who, prompt, ref, opts, ctx.clock.now(), key)
    ask_id: str = rec["id"]
    ctx.events.record("ask", id=ask_id, worker=who)

    notify(
        ctx,
        f"{who} asks: {prompt}"
        + (f" ({', '.join(opts)})" if opts else "")
        + f"\nanswer: looop answer {ask_id} …",
        ask_id,
        "ask",
    )
    return ask_id


def _wait_and_print(ctx: Ctx, who: str, ask_id: str) -> None:
    """Wait for the answer; print it and the messages told meanwhile, or end with 124."""
    p = ctx.paths
    knobs = ctx.knobs()
    limit = knobs.real("ask_timeout_s")
    sys.stderr.write(f"looop: waiting for an answer to {ask_id} (`looop answer {ask_id} …`)\n")
    got = await_answer(
        p.asks,
        p.answers,
        p.tells,
        ask_id,
        who,
        ctx.clock,
        knobs.num("ask_poll_ms") / 1000,
        limit or None,
        lambda line: sys.stderr.write(f"looop: {line}\n"),
    )
    if got is None:
        sys.stderr.write(f"looop: no answer to {ask_id} within {limit:g}s\n")
        raise SystemExit(124)
    text, told = got
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    for msg in told:
        sys.stdout.write(f"---\ntold: {msg}\n")


def _own_pending(ctx: Ctx, who: str, ask_id: str) -> dict[str, str]:
    """`ask --wait ID`: one of `who`'s own asks, still pending or answered (its answer is
    printed again: the worker that asked may have died before it read it)."""

    p = ctx.paths
    name = f"{ask_id}.json"
    if id_number(ask_id, who) == 0 or not (
        (p.asks / name).is_file() or (p.answers / name).is_file()
    ):
        raise LooopError(
            f"no ask '{ask_id}' of worker {who} to wait for — `looop asks` lists the pending "
            "ones; ask anew with --prompt"
        )
    return {"id": ask_id}


@click.command(
    "wait",
    help="`looop wait ID`: block until a session ends (its exit code). "
    "`looop wait`: block until the world needs a human (exit 2: no pulse runs).",
)
@click.argument("sid", required=False, shell_complete=idcomplete.sessions)
@click.option("--timeout", default=None, help="Duration (default: forever).")
@click.option("--only-asks", is_flag=True, help="No id: wake only for a pending ask.")
@click.option("--actionable", is_flag=True, help="No id: wake for asks or a new journal line.")
@click.option("--json", "as_json", is_flag=True, help="No id: print what changed as JSON.")
def wait_cmd(
    sid: str | None, timeout: str | None, only_asks: bool, actionable: bool, as_json: bool
) -> None:
    ctx = make_ctx(events_to=None)
    if sid is None:
        poll = ctx.knobs().num("wait_poll_ms") / 1000
        code, changed, asks = wait_for_human(
            ctx, only_asks, actionable, duration_arg(timeout, None), poll
        )
        # as v1.0: the state object `looop state` prints, plus what changed
        st = gather_status(ctx.paths, ctx.env, ctx.clock)
        if as_json:
            full = {**add_v1_fields(st), "changed": changed}
            click.echo(jsonio.dumps(full, indent=2, sort_keys=True, ensure_ascii=False))
        else:
            click.echo(f"changed: [{', '.join(changed)}]")
            for a in asks:
                click.echo(f"ask {a.get('id')} from {a.get('worker')}: {a.get('prompt')}")
            click.echo()
            print_status(st, as_json=False)
        raise SystemExit(code)

    target = target_sid(sid, False)
    way = way_at(str(ctx.paths.data), ctx.env, ctx.clock, target)
    code = way.wait(target, duration_arg(timeout, None))
    if code == 137 and way.kind == "local":  # a supervisor here that died leaves its mark here
        _report_dead(ctx, target)
    raise SystemExit(code)


def _report_dead(ctx: Ctx, sid: str) -> None:
    """A supervisor that died (SIGKILL, OOM) never wrote the end: record it, say so."""
    s = get_session(ctx.paths.data, sid)
    if s.dead:
        mark_dead(s.dir, utc_stamp_ms(ctx.clock.now()))
    elif not s.supervisor_died:
        return  # a real exit code 137 (the program was SIGKILLed under a live supervisor)
    click.echo(
        f"looop: session {sid} is dead: its supervisor died without recording an end (exit "
        f"unknown, reported as 137) — `looop log {sid}` shows its last output",
        err=True,
    )
