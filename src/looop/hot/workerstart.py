"""`looop worker start` without click: the plain spellings of the verb, the same move.

The click verb (cli/workers.py) and this face both run `steerwork.steer` with the same
decision and the same `started_ok` check, and print the same two lines, so output, exit code
and files agree (tests/unit/cli/test_worker_start_parity.py). Anything unusual (--help, an
unknown or repeated option, a value that looks like an option) is left to click."""

from __future__ import annotations

import os
import sys

from looop.hot import killfast
from looop.hot.beatclient import hand_over
from looop.hot.cost.breakers import start_refused
from looop.hot.errors import LooopError

TYPE_CHECKING = False  # not `from typing`: a hot verb must not pay for it

if TYPE_CHECKING:
    from collections.abc import Callable

    from looop.core.context import Ctx
    from looop.hot.clock import Clock

_OPTS = {
    "--runner": "runner",
    "--command": "command",
    "--verify": "verify",
    "--repo": "repo",
    "--branch": "branch",
    "--host": "host",
    "--journal": "journal",
    "-j": "journal",
}
# flag -> the `sandbox` field it sets
_FLAGS = {"--sandbox": "on", "--no-sandbox": "off"}
RESUME_FLAG = "--resume"  # `looop up` starts it again on its conversation after a crash


class Start:
    __slots__ = (
        "branch",
        "budget",
        "command",
        "host",
        "journal",
        "on_budget",
        "prompt",
        "repo",
        "resume",
        "runner",
        "sandbox",
        "verify",
        "worker_id",
    )

    def __init__(self) -> None:
        self.worker_id = ""
        self.prompt: str | None = None
        self.runner: str | None = None
        self.command: str | None = None
        self.verify: str | None = None
        self.journal: str | None = None
        self.sandbox: str | None = None  # "on" / "off"; None: the config decides
        self.repo: str | None = None  # run it in its own git worktree of this repo
        self.branch: str | None = None
        self.resume = False
        self.host: str | None = None  # an SSH host's name (looop host add), or local
        self.budget: float | None = None  # its spend ceiling (USD); click's --budget only
        self.on_budget = "pause"


def parse_fast(argv: list[str]) -> Start | None:
    """`worker start ID [PROMPT] [--runner R] [--command C] [--verify V] [-j J]
    [--sandbox | --no-sandbox] [--repo PATH] [--branch NAME] [--resume] [--host NAME]`, options in
    any order, `--opt=value` too; None sends everything else to click."""
    if len(argv) < 2 or argv[0] not in ("worker", "w") or argv[1] != "start":
        return None
    start = Start()
    seen: set[str] = set()
    positional: list[str] = []
    i, rest = 0, argv[2:]
    while i < len(rest):
        tok = rest[i]
        name, value = tok, None
        if tok.startswith("--") and "=" in tok:
            name, value = tok.split("=", 1)
        if tok == RESUME_FLAG:
            if start.resume:
                return None
            start.resume = True
        elif tok in _FLAGS:
            if "sandbox" in seen:
                return None  # both flags, or one twice: click words it
            seen.add("sandbox")
            start.sandbox = _FLAGS[tok]
        elif name in _OPTS:
            if value is None:
                if i + 1 >= len(rest):
                    return None
                value = rest[i + 1]
                i += 1
            field = _OPTS[name]
            if field in seen or (value.startswith("-") and value != "-"):
                return None
            seen.add(field)
            setattr(start, field, value)
        elif tok.startswith("-") and tok != "-":
            return None  # --help, -h, an unknown option, `--`: click words these
        else:
            positional.append(tok)
        i += 1
    if not positional:
        return None
    start.worker_id = positional[0]
    # the prompt's words joined as v1.0 does (`worker start w1 fix the bug`)
    start.prompt = " ".join(positional[1:]) if len(positional) > 1 else None
    return start


def run_fast(start: Start, env: dict[str, str], clock: Clock | None) -> None:
    # lazy: loaded after the argv check, so a mistyped verb never pays for the move
    from looop.cli.ctxbuild import ctx_for
    from looop.cli.steerwork import started_ok
    from looop.hot.clock import clock_for

    ctx = ctx_for(env, clock_for(env, clock), events_to="stderr")
    sys.stdout.write(start_worker_lines(start, ctx, started_ok))


def start_worker_lines(start: Start, ctx: Ctx, check: Callable[[Ctx, str], None]) -> str:
    """The move and its two lines (shared with the click verb)."""
    from looop.cli.steerwork import body, steer  # lazy: see run_fast

    refuse_over_fleet_budget(ctx, start)

    obj: dict[str, object] = {
        "action": "start_worker",
        "id": start.worker_id,
        "prompt": body(start.prompt, "worker prompt"),
    }
    for k in ("runner", "command", "verify", "sandbox", "branch", "host"):
        v = getattr(start, k)
        if v is not None:
            obj[k] = v
    if start.resume:
        obj["resume"] = True
    if start.budget is not None:  # set before the start, undone if it is refused; journaled
        obj["budget_usd"], obj["on_budget"] = start.budget, start.on_budget
    if start.repo is not None:
        # relative to where the human stands; ~ the shell expands, or the worker start does;
        # a URL (a host clones it: https://…, git@host:path) is no path, nor is any repo on a
        # host named (a path there is the host's: a relative one is refused, not made ours)
        first = start.repo.split("/", 1)[0]
        keep = not start.repo or start.repo.startswith("~") or "://" in start.repo or ":" in first
        keep = keep or start.host not in (None, "local")
        obj["repo"] = start.repo if keep else os.path.abspath(start.repo)
    wid = start.worker_id
    done = steer(ctx, obj, start.journal, check=lambda c: check(c, wid))
    return f"{done}\n  watch: looop shot {wid} · looop log {wid} -f · looop attach {wid}\n"


def refuse_over_fleet_budget(ctx: Ctx, start: Start) -> None:
    """The daily budget's refusal of a new worker (decide/cost/breakers.start_refused)."""

    def line() -> str | None:
        if start.command is not None:
            return start.command
        r = ctx.config().runner(start.runner)
        return r.worker if r is not None else None

    why = start_refused(ctx.knobs(), ctx.paths, ctx.clock, start.worker_id, line)
    if why is not None:
        raise LooopError(why)


def serve(
    argv: list[str], env: dict[str, str], clock: Clock | None, caller: int | None = None
) -> bool:
    """`worker start …` (and `worker kill`, killfast's): in a child of the beat host when one
    answers, as a tick, so the imports are paid once."""
    if argv[1:2] == ["kill"]:
        return killfast.serve(argv, env, clock, caller)
    parsed = parse_fast(argv)
    if parsed is None:
        return False
    hand_over(argv, env, clock)
    run_fast(parsed, env, clock)
    return True
