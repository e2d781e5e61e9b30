"""Landing is a human's act on every surface (issue 64, item 5): text an agent types (a
decision's steer_session, MCP's send_line with or without Enter, run_shell) that lands, merges
into or pushes a worker's base is refused in one line and never typed; `looop land` run inside
a worker's session lands only what a human typed at its prompt, and names the session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from looop.act import reach
from looop.act.executor import execute
from looop.act.moves import far
from looop.act.outcome import ExecError
from looop.act.parse import decision_from_obj
from looop.act.protected import guard_for
from looop.act.shellguard import tripwire
from looop.cli.land import land_actor
from looop.cli.root import cli
from looop.core.context import Ctx
from looop.home.errors import LooopError
from looop.web import actions
from looop.web.reads import WebError
from tests.fakebackend import FakeBackend
from tests.helpers import with_env

pytestmark = pytest.mark.unit


@pytest.fixture
def repo(ctx: Ctx, tmp_path: Path) -> Path:
    """A worker's repo (its worktree record names it), as `looop worker start` leaves it."""
    r = tmp_path / "my-repo"
    (r / "sub").mkdir(parents=True)
    ctx.paths.worktrees.mkdir(parents=True)
    rec = {"wid": "wl4", "repo": str(r), "path": str(ctx.paths.worktrees / "wl4")}
    (ctx.paths.worktrees / "wl4.json").write_text(json.dumps(rec))
    return r


LANDING = [
    "looop land wl4",
    "looop land wl4 --pr",
    "/usr/local/bin/looop --data /x land wl4",
    "nohup looop land wl4 &",
    "bash -c 'looop land wl4'",
    "alias l='looop land wl4'",
    "gh pr merge 12 --squash",
    "gh -R o/r pr merge 3",
    "git -C {repo} merge looop/wl4",
    "cd {repo} && git merge --ff-only looop/wl4",
    "cd {repo}/sub && git pull",
    "git -C {repo} reset --hard looop/wl4",
    "cd {repo} && git push origin main",
    "git push origin HEAD:main",  # from the worker's worktree (data/worktrees/wl4)
    "git push origin looop/wl4:refs/heads/master",
]


@pytest.mark.parametrize("cmd", LANDING)
def test_typed_text_that_lands_is_refused(ctx: Ctx, repo: Path, cmd: str) -> None:
    guard = guard_for(ctx, str(ctx.paths.worktrees / "wl4"))
    why = tripwire(cmd.format(repo=repo), guard)
    assert why is not None and "a human's act" in why and "\n" not in why, cmd


@pytest.mark.parametrize(
    "cmd",
    [
        "git push -u origin looop/wl4",
        "git -C {repo} log --oneline",
        "git merge main",  # into the worker's own branch, in its worktree
        "gh pr create --fill",
        "looop status",
        "cd /elsewhere && git push origin main",  # not a worker's
    ],
)
def test_a_worker_s_own_git_work_passes(ctx: Ctx, repo: Path, cmd: str) -> None:
    guard = guard_for(ctx, str(ctx.paths.worktrees / "wl4"))
    assert tripwire(cmd.format(repo=repo), guard) is None, cmd


@pytest.fixture
def typed(ctx: Ctx, monkeypatch: pytest.MonkeyPatch) -> FakeBackend:
    """Worker wl4 as a live session whose typing is recorded, not done."""
    b = FakeBackend()
    monkeypatch.setattr(far, "here", lambda ctx: b)
    (ctx.paths.sessions / "wl4").mkdir(parents=True)
    return b


def _sent(b: FakeBackend) -> list[object]:
    return [c for c in b.calls if c[0] == "send"]


@pytest.mark.parametrize("enter", [True, False])
def test_mcp_send_line_of_a_landing_is_refused_in_one_line(
    ctx: Ctx, typed: FakeBackend, enter: bool
) -> None:
    with pytest.raises(WebError) as e:
        actions.send_text(ctx, "wl4", {"text": "looop land wl4", "enter": enter}, actor="mcp")
    assert e.value.status == 409 and "\n" not in e.value.message
    assert "looop land" in e.value.message and "a human's act" in e.value.message
    assert _sent(typed) == []


def test_a_decided_steer_of_a_landing_is_refused(ctx: Ctx, typed: FakeBackend) -> None:
    obj = {"action": "steer_session", "id": "wl4", "input": "looop land wl4"}
    with pytest.raises(ExecError, match=r"^steer_session input refused by the shell tripwire"):
        execute(ctx, ctx.knobs(), decision_from_obj(obj))
    assert _sent(typed) == []


def test_an_agent_s_typing_marks_the_session_and_a_human_s_clears_it(
    ctx: Ctx, typed: FakeBackend
) -> None:
    mark = ctx.paths.sessions / "wl4" / "typed_by_agent"
    actions.send_text(ctx, "wl4", {"text": "echo hi"}, actor="mcp")
    assert mark.read_text() == "mcp" and _sent(typed)
    actions.send_text(ctx, "wl4", {"text": "looop land wl4"}, actor="user (cli)")
    assert not mark.exists()  # a human typed it: sent as ever


def test_land_inside_a_session_needs_a_human_at_its_prompt(ctx: Ctx, typed: FakeBackend) -> None:
    assert land_actor(ctx, "user (cli)", False) == "user (cli)"  # not in a session
    inside = with_env(ctx, LOOOP_SESSION_ID="wl4")
    got = land_actor(inside, "user (cli)", True)
    assert got == "user (cli in worker wl4's session)"
    with pytest.raises(LooopError, match="no one typed it at its prompt"):
        land_actor(inside, "user (cli)", False)  # an agent's tool runs it
    reach.note_typist(ctx, "wl4", "mcp")
    with pytest.raises(LooopError, match=r"an agent \(mcp\) typed into it last"):
        land_actor(inside, "user (cli)", True)


def test_looop_land_run_by_a_worker_s_agent_is_refused(ctx: Ctx, typed: FakeBackend) -> None:
    env = {"LOOOP_DATA_DIR": str(ctx.paths.data), "LOOOP_SESSION_ID": "wl4"}
    got = CliRunner().invoke(cli, ["land", "wl4"], env=env)  # its stdin is no terminal
    assert isinstance(got.exception, LooopError), got.output  # the CLI says it in one line
    said = str(got.exception)
    assert "looop land refused inside worker wl4's session" in said and "\n" not in said
