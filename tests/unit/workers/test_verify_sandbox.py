"""A worker's verify runs under shell_policy's sandbox unless a human gave it (workers/verify.py
with the provenance launch records): the run is handed the policy for a decision's verify,
none for a human's; an unreadable config or a sandbox that cannot start fails the verify
with one line, and nothing runs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import cast

from looop.core import provenance
from looop.core.context import Ctx
from looop.core.sandboxpolicy import OFF, ON, SandboxPolicy
from looop.core.srt import SandboxError
from looop.sessions import Session
from looop.workers.verify import run_pending_verifies


@dataclass
class Dead:
    id: str
    alive: bool = False


@dataclass
class Outcome:
    exit_code: int | None = 0
    timed_out: bool = False
    stdout: str = ""
    stderr: str = ""


def given(ctx: Ctx, wid: str, cmd: str, by: str | None) -> None:
    ctx.paths.verify.mkdir(parents=True, exist_ok=True)
    (ctx.paths.verify / f"{wid}.cmd").write_text(cmd + "\n")
    if by is not None:
        provenance.write(ctx.paths, provenance.VERIFY, wid, cmd.encode(), by)


def verify(ctx: Ctx, sandbox: SandboxPolicy | None) -> dict[str, SandboxPolicy | None]:
    seen: dict[str, SandboxPolicy | None] = {}

    def run(c: Ctx, cmd: str, timeout: float, box: SandboxPolicy | None) -> Outcome:
        seen[cmd] = box
        return Outcome()

    dead = cast(list[Session], [Dead("w1"), Dead("w2"), Dead("w3")])
    run_pending_verifies(ctx, ctx.knobs(), dead, run, sandbox)
    return seen


def result(ctx: Ctx, wid: str) -> dict[str, object]:
    got = json.loads((ctx.paths.verify / f"{wid}.json").read_text())
    assert isinstance(got, dict)
    return got


def test_only_a_humans_verify_runs_outside_the_shell_sandbox(ctx: Ctx) -> None:
    given(ctx, "w1", "test -f reports/a.md", provenance.HUMAN)
    given(ctx, "w2", "test -f reports/b.md", None)  # a decision's: launch records none
    given(ctx, "w3", "test -f reports/c.md", provenance.HUMAN)
    (ctx.paths.verify / "w3.cmd").write_text("cp ~/.ssh/id_rsa reports/\n")  # changed since
    seen = verify(ctx, ON)
    assert seen == {
        "test -f reports/a.md": None,
        "test -f reports/b.md": ON,
        "cp ~/.ssh/id_rsa reports/": ON,
    }


def test_sandbox_off_runs_every_verify_as_before(ctx: Ctx) -> None:
    given(ctx, "w1", "true", None)
    assert verify(ctx, OFF) == {"true": None}


def test_an_unreadable_config_runs_no_decisions_verify(ctx: Ctx) -> None:
    given(ctx, "w1", "true", provenance.HUMAN)
    given(ctx, "w2", "false", None)
    assert verify(ctx, None) == {"true": None}
    got = result(ctx, "w2")
    assert got["pass"] is False and "config cannot be read" in str(got["output"])


def test_a_sandbox_that_cannot_start_fails_the_verify_in_one_line(ctx: Ctx) -> None:
    given(ctx, "w1", "true", None)

    def run(c: Ctx, cmd: str, timeout: float, box: SandboxPolicy | None) -> Outcome:
        raise SandboxError("verify cannot run sandboxed: missing srt")

    run_pending_verifies(ctx, ctx.knobs(), cast(list[Session], [Dead("w1")]), run, ON)
    got = result(ctx, "w1")
    assert got["pass"] is False
    assert got["output"] == "not run: verify cannot run sandboxed: missing srt"


def test_a_decisions_unreadable_verify_does_not_run_once_the_sandbox_is_off(ctx: Ctx) -> None:
    given(ctx, "w1", "python3 -c 'x'", None)
    provenance.mark_unread(ctx.paths, provenance.VERIFY, "w1", b"python3 -c 'x'")
    assert verify(ctx, OFF) == {}
    got = result(ctx, "w1")
    assert got["pass"] is False and "sandbox is off now" in str(got["output"])
