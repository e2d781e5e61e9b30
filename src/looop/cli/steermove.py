"""One decision run as the human: the move behind the steering verbs (cli/steer.py), `looop
kill` and `worker start` (cli/workers.py), with the executor loaded at the top. Only what
moves imports this module: `looop kill` is here, so a kill loads no other verb's modules."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from looop.act.decision import DecisionError
from looop.act.executor import execute
from looop.act.outcome import ExecError
from looop.act.parse import decision_from_obj  # loads only this move's module
from looop.cli import idcomplete
from looop.cli.app import JOURNAL_OPT, make_ctx
from looop.core.context import Ctx
from looop.home import store
from looop.home.errors import LooopError
from looop.seed import ensure_data_dir


def steer(
    ctx: Ctx,
    obj: dict[str, Any],
    journal: str | None,
    *,
    allow_dangerous: bool = False,
    check: Callable[[Ctx], None] | None = None,
) -> str:
    """Run one decision as the human; the success line to print. `check` may still refuse
    success (LooopError) after the move ran, before the line is printed."""
    if ctx.env.get("LOOOP_DOOR") == "1":  # a box's write of the data dir lands in its scratch
        raise LooopError(
            f"{obj['action']} is the pulse's, not a sandboxed worker's: nothing of it would land "
            "— say what you need with `looop ask`"
        )
    ensure_data_dir(ctx.paths)
    if journal is not None:
        obj["journal"] = journal
    before = _stamp(ctx.paths.last_shell)
    try:
        decision = decision_from_obj(obj)
        done = execute(ctx, ctx.knobs(), decision, actor="cli", allow_dangerous=allow_dangerous)
    except (DecisionError, ExecError) as e:  # the journal and LAST FAILURE keep the move's own
        raise LooopError(in_verb_words(str(e), str(obj["action"]))) from None
    finally:
        # only this command's output: a refused one must not replay the previous command's
        if obj["action"] == "run_shell" and _stamp(ctx.paths.last_shell) != before:
            _show_shell_output(ctx.paths.last_shell)
    if check is not None:
        check(ctx)
    return f"✓ {done.kind} · {done.journal}"


# a move's field as the verb that makes it spells it (`worker start`'s options and arguments)
_SPELLED = {
    "id": "the id",
    "prompt": "the brief",
    "body": "the text",
    "budget_usd": "--budget",
    **{k: f"--{k}" for k in ("repo", "branch", "host", "runner", "command", "verify", "sandbox")},
}


def in_verb_words(said: str, action: str) -> str:
    """A refused move's line as the person who typed the verb knows it: no action tag, each
    field by its option's name ("start_worker: field 'repo' names …" -> "--repo names …")."""
    tag, sep, rest = said.partition(": ")
    if not sep or tag != action:
        return said
    m = re.match(r"field '(\w+)'", rest)
    if m is None:
        return rest
    return _SPELLED.get(m.group(1), f"'{m.group(1)}'") + rest[m.end() :]


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns


def _show_shell_output(path: Path) -> None:
    try:
        rec = store.read_json_object(path) or {}
    except LooopError:
        return
    out, err = str(rec.get("stdout") or ""), str(rec.get("stderr") or "")
    if out:
        sys.stdout.write(out.rstrip("\n") + "\n")
        sys.stdout.flush()
    if err:
        sys.stderr.write(err.rstrip("\n") + "\n")
        sys.stderr.flush()


@click.command("kill", help="Stop a worker (SIGHUP to its process group, then SIGKILL).")
@click.argument("worker_id", shell_complete=idcomplete.workers)
@click.option("--reason", default="", help="Why (journaled).")
@JOURNAL_OPT
def kill_cmd(worker_id: str, reason: str, journal: str | None) -> None:
    obj = {"action": "kill_worker", "id": worker_id, "reason": reason}
    click.echo(steer(make_ctx(), obj, journal))
