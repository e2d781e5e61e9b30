"""A worker's verify runs under shell_policy's sandbox unless a human gave it (workers/verify.py
with the provenance launch records): the run is handed the policy for a decision's verify,
none for a human's; an unreadable config or a sandbox that cannot start fails the verify
with one line, and nothing runs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pytest

from looop.core import provenance
from looop.core.context import Ctx
from looop.home.sandboxpolicy import OFF, ON, SandboxPolicy
from looop.home.where import SANDBOX_SETTINGS
from looop.sandbox import worker as sandbox
from looop.sandbox.srt import SandboxError, srt_program
from looop.sandbox.worker import WorkerBox
from looop.sessions.state import Session
from looop.workers import resume
from looop.workers.boxed import verify_argv
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


Box = SandboxPolicy | WorkerBox | None


def verify(ctx: Ctx, shell: SandboxPolicy | None) -> dict[str, Box]:
    seen: dict[str, Box] = {}

    def run(c: Ctx, cmd: str, timeout: float, box: Box, cwd: Path | None = None) -> Outcome:
        seen[cmd] = box
        return Outcome()

    dead = cast(list[Session], [Dead("w1"), Dead("w2"), Dead("w3")])
    run_pending_verifies(ctx, ctx.knobs(), dead, run, shell)
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

    def run(c: Ctx, cmd: str, timeout: float, box: Box, cwd: Path | None = None) -> Outcome:
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


# -- a worker that ran sandboxed: its verify runs in that worker's own box, whoever wrote it


def ran_sandboxed(ctx: Ctx, wid: str, policy: SandboxPolicy = ON, settings: bool = True) -> None:
    """What a sandboxed start leaves: srt's settings in sandbox/<id>/ and its start record."""
    if settings:
        (ctx.paths.sandbox / wid).mkdir(parents=True, exist_ok=True)
        (ctx.paths.sandbox / wid / SANDBOX_SETTINGS).write_text("{}\n")
    rec = resume.Record(wid, "claude", None, None, str(ctx.paths.data), policy, "never", 0.0)
    resume.write_record(ctx, rec)


@pytest.mark.parametrize("shell", [ON, OFF, None], ids=["shell-on", "shell-off", "no-config"])
def test_a_sandboxed_workers_verify_runs_in_its_box_whoever_wrote_it(
    ctx: Ctx, shell: SandboxPolicy | None
) -> None:
    given(ctx, "w1", "make test", provenance.HUMAN)
    given(ctx, "w2", "python3 -c 'x'", None)  # a decision's the tripwire cannot read
    provenance.mark_unread(ctx.paths, provenance.VERIFY, "w2", b"python3 -c 'x'")
    given(ctx, "w3", "true", provenance.HUMAN)  # an unsandboxed worker: as before
    ran_sandboxed(ctx, "w1")
    ran_sandboxed(ctx, "w2")
    assert verify(ctx, shell) == {
        "make test": WorkerBox("w1"),
        "python3 -c 'x'": WorkerBox("w2"),
        "true": None,
    }


def test_either_trace_of_a_sandboxed_start_is_enough(ctx: Ctx) -> None:
    given(ctx, "w1", "make a", provenance.HUMAN)
    given(ctx, "w2", "make b", provenance.HUMAN)
    given(ctx, "w3", "make c", provenance.HUMAN)
    ran_sandboxed(ctx, "w1", settings=False)  # srt.json gone: the record still says so
    (ctx.paths.sandbox / "w2").mkdir(parents=True)
    (ctx.paths.sandbox / "w2" / SANDBOX_SETTINGS).write_text("{}\n")  # no record: the file says
    ran_sandboxed(ctx, "w3", OFF, settings=False)
    resume.record_path(ctx, "w3").write_text("{not json")  # unreadable: counts as sandboxed
    seen = verify(ctx, OFF)
    assert seen == {"make a": WorkerBox("w1"), "make b": WorkerBox("w2"), "make c": WorkerBox("w3")}


def test_an_unsandboxed_workers_record_keeps_todays_rule(ctx: Ctx) -> None:
    given(ctx, "w1", "make a", provenance.HUMAN)
    given(ctx, "w2", "make b", None)
    ran_sandboxed(ctx, "w1", OFF, settings=False)
    ran_sandboxed(ctx, "w2", OFF, settings=False)
    assert verify(ctx, ON) == {"make a": None, "make b": ON}


def _srt(tmp_path: Path) -> str:
    prog = tmp_path / "srt"
    prog.write_text("#!/bin/sh\n")
    prog.chmod(0o755)
    return str(prog)


def test_the_verify_box_is_the_workers_own_settings(ctx: Ctx, tmp_path: Path) -> None:
    policy = SandboxPolicy(True, ("~/src",), ("/srv/secret",), ("pypi.org",))
    env = {**ctx.env, "LOOOP_SRT": _srt(tmp_path)}
    prog = srt_program(env)
    assert prog is not None
    sandbox.prepare(ctx, "w1", "claude", policy, "claude go", dict(env), {}, prog=prog)
    ran_sandboxed(ctx, "w1", policy, settings=False)  # prepare wrote them
    if sandbox.missing(env):
        pytest.skip(f"srt's helpers are not installed here: {sandbox.missing(env)}")
    argv, _ = verify_argv(ctx, WorkerBox("w1"), "make test", dict(env))
    mine = ctx.paths.sandbox / "w1"
    worker = json.loads((mine / SANDBOX_SETTINGS).read_text())
    box = json.loads((mine / sandbox.VERIFY_SETTINGS).read_text())
    assert box == worker  # the same walls, network and writable workspace
    assert f"{ctx.paths.rooms}/w1/work" in box["filesystem"]["allowWrite"]
    assert argv[:3] == [prog, "-s", str(mine / sandbox.VERIFY_SETTINGS)]
    assert argv[4].endswith("; make test") and f"TMPDIR={ctx.paths.rooms}/w1/tmp" in argv[4]


@pytest.mark.parametrize("case", ["gone", "off", "unreadable", "worktree-gone"])
def test_a_box_that_cannot_be_rebuilt_refuses_in_one_line(ctx: Ctx, case: str) -> None:
    if case == "off":
        ran_sandboxed(ctx, "w1", OFF)
    elif case == "unreadable":
        ran_sandboxed(ctx, "w1")
        resume.record_path(ctx, "w1").write_text('{"v": 1, "id": "w1"}')
    elif case == "worktree-gone":
        rec = resume.Record("w1", "claude", None, None, "/", ON, "never", 0.0, repo=True)
        resume.write_record(ctx, rec)
    with pytest.raises(SandboxError) as e:
        verify_argv(ctx, WorkerBox("w1"), "make test", dict(ctx.env))
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(
        "worker w1's verify cannot run in the worker's sandbox"
    )


def test_a_folder_the_worker_swapped_for_a_symlink_fails_the_verify_not_the_beat(
    ctx: Ctx, tmp_path: Path
) -> None:
    env = {**ctx.env, "LOOOP_SRT": _srt(tmp_path)}
    prog = srt_program(env)
    assert prog is not None
    sandbox.prepare(ctx, "w1", "claude", ON, "claude go", dict(env), {}, prog=prog)
    ran_sandboxed(ctx, "w1", settings=False)
    if sandbox.missing(env):
        pytest.skip(f"srt's helpers are not installed here: {sandbox.missing(env)}")
    reports = ctx.paths.rooms / "w1" / "reports"  # its room is the worker's to write
    reports.rmdir()
    reports.symlink_to(tmp_path / "nowhere" / "x")
    with pytest.raises(SandboxError) as e:
        verify_argv(ctx, WorkerBox("w1"), "make test", dict(env))
    assert "\n" not in str(e.value) and "cannot set up the worker's sandbox" in str(e.value)
    assert not (tmp_path / "nowhere").exists()
