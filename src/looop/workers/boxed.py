"""A sandboxed worker as workers/ knows it: its verify run inside its walls, built again from
its start record and worktree (sandbox/worker.box_argv builds the walls), and the worker
contract as it reads inside the box. The box itself is the sandbox room's (sandbox/worker.py)."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping

from looop.core.context import Ctx
from looop.runners import RUNNERS, profile
from looop.runners.runnerprofile import RunnerProfile
from looop.sandbox.srt import SandboxError
from looop.sandbox.worker import WorkerBox, box_argv
from looop.workers.errors import WorkerError
from looop.workers.startrecord import read_record, record_path
from looop.workers.treerecord import Tree, WorktreeError, load_all
from looop.workers.workspace import last_rule, replace_rule


def verify_argv(
    ctx: Ctx, box: WorkerBox, cmd: str, env: dict[str, str]
) -> tuple[list[str], dict[str, str]]:
    """A sandboxed worker's verify inside that worker's walls: srt's settings built again from
    its start record (runner, sandbox policy, worktree), so the verify writes, reads and
    reaches what the worker could and nothing more; TMPDIR the worker's. Raises SandboxError,
    one line, when srt cannot run here or the record cannot say what the worker's walls were:
    the verify then never runs."""
    wid = box.wid
    who = f"worker {wid}'s verify"

    def unknown(why: str) -> SandboxError:
        return SandboxError(
            f"{who} cannot run in the worker's sandbox: its start record "
            f"({record_path(ctx, wid)}) {why} — the worker ran sandboxed, so its verify "
            "runs nowhere else; start the worker again"
        )

    try:
        rec = read_record(ctx, wid)
    except WorkerError as e:
        raise SandboxError(f"{who} cannot run in the worker's sandbox: {e}") from None
    if rec is None:
        raise unknown("is gone")
    if not rec.sandbox.on:
        raise unknown("says it ran unsandboxed, but its srt settings are there")
    trees: list[Tree] = []
    if rec.repo:
        try:
            trees = load_all(ctx, wid)
        except WorktreeError as e:
            raise unknown(f"names a worktree whose record is unreadable ({e})") from None
        if not trees or any(t.removed for t in trees):
            raise unknown("names a worktree that is gone")
    return box_argv(ctx, box, (rec.runner, rec.sandbox, trees), cmd, env)


def with_note(contract: str, wid: str) -> str:
    """The contract as it reads inside srt: only what works there (the supervisor's socket,
    the repos and /tmp are out of reach), with the walls as its last rule."""
    for head, rule in (("**Need a human", _ASK), ("**Files**", _FILES), ("**Code work**", _CODE),
                       ("**When you are completely done**", _DONE)):  # fmt: skip
        contract = replace_rule(contract, head, rule.replace("__ID__", wid))
    return last_rule(contract, _NOTE)


_ASK = (
    "**Need a human decision, information or approval?** Do not guess. Ask and wait:\n"
    '  `answer=$("$LOOOP_BIN" ask __ID__ --prompt "<one clear question>" --options "yes,no")`\n'
    "  The command blocks until a human answers and prints only the answer. If `ask` fails, "
    '`"$LOOOP_BIN" flag __ID__ "<what you need>"` and wait at your terminal.'
)
_FILES = (
    "**Files**: the data dir (your starting directory) belongs to the pulse and is read-only "
    'here. Write deliverables to "$LOOOP_REPORTS_DIR" (mention their paths in your asks) and '
    'your work to "$LOOOP_WORKSPACE". Never edit PLAYBOOK.md, goals/ or sensors/; propose '
    'changes in "$LOOOP_REPORTS_DIR/__ID__.md" and ask.'
)
_CODE = (
    "**Code work**: repos outside are read-only here. Clone the one you work on into your "
    'workspace — `git clone <repo> "$LOOOP_WORKSPACE/<dir>"` — work and commit there, and '
    "name that folder in your report. Never edit code inside the data dir."
)
_DONE = (
    "**When you are completely done** (nothing pending, nothing waiting on a human), end your "
    'own session: `"$LOOOP_BIN" kill __ID__`. Never end it mid-task or while waiting.'
)
_NOTE = (
    '**Sandbox**: you run inside a sandbox. Write your work in "$LOOOP_WORKSPACE", '
    'scratch files in "$TMPDIR" and deliverables in "$LOOOP_REPORTS_DIR" (name their paths '
    "in your asks). Everything else is read-only or hidden: the data dir belongs to looop, "
    'and the `"$LOOOP_BIN"` verbs above are how you reach it. The network reaches only your '
    'model API and the domains the human allowed. A write that fails with "Read-only file '
    'system" or a 403 from the proxy is the sandbox: ask for access instead of working '
    "around it."
)


# -- what a sandboxed worker's CLI would ask on its first screen, answered before it starts:
# an answer given inside the box never persists, so every new worker would ask again. Each
# CLI's profile says what it needs (RunnerProfile.first_run): the variables that make it ask
# nothing, or why it cannot start yet (an answer only the user gives, once, outside), said in
# one line instead of a worker stuck on a prompt.


def _command(line: str) -> list[str]:
    """The line's words from its program on (past `env A=B`); none when it cannot be split."""
    try:
        words = shlex.split(line)
    except ValueError:
        return []
    while words and (words[0] == "env" or "=" in words[0]):
        words = words[1:]
    return words


def box_env(
    line: str, env: Mapping[str, str], runners: tuple[RunnerProfile, ...] = RUNNERS
) -> dict[str, str]:
    """The variables a sandboxed worker running `line` starts with so its CLI asks nothing;
    raises SandboxError (one line: what to run once) when its CLI's first run has questions
    only the user answers and they are not answered yet. Another program gets nothing."""
    words = _command(line)
    p = profile(os.path.basename(words[0]) if words else "", runners)
    if p is None or p.first_run is None:
        return {}
    add, why = p.first_run(env, words)
    if why:
        raise SandboxError(why)
    return add
