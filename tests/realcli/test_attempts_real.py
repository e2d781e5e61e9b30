"""Issue 69's proof with real agents: `looop worker start fix --attempts claude,codex` runs
the real claude and codex CLIs at one task, each in its own worktree, against the scripted
model, which tells each its own change. Done, each stays up at its prompt, as a TUI agent
does: the beat's look finds both waiting, the needs-you queue asks for a pick, `review`
shows them side by side, `worker diff` where they differ, and `land fix --pick 2` lands
codex's change as `land` does and stops claude's, its branch kept."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from looop.runners.presets import PRESETS
from looop.sessions.client import kill, screenshot
from looop.sessions.state import get_session
from tests.realcli.harness import _CONFIGURE, Rig, answer_first_run_prompts, git, git_repo
from tests.realcli.model_server import PROBE_MARK

RigFor = Callable[[str], Rig]
COMMIT = (
    'cd "$LOOOP_WORKSPACE" && '
    "printf 'def f(x):\\n    return {body}\\n' > app.py && git add app.py && git commit -qm '{msg}'"
)
STEPS = {  # per API: claude speaks Anthropic's messages, codex OpenAI's responses
    "anthropic": [COMMIT.format(body="x * 2", msg="double by product")],
    "responses": [COMMIT.format(body="x + x", msg="double by sum")],
}


def _until(cond: Callable[[], object], secs: float, what: str, root: Path) -> None:
    deadline = time.monotonic() + secs
    while not cond():
        if time.monotonic() > deadline:
            shots = [screenshot(root, f"fix.{n}", "plain").get("text", "") for n in (1, 2)]
            raise AssertionError(f"timed out waiting for {what}\n" + "\n----\n".join(shots))
        time.sleep(0.5)


@pytest.mark.timeout(420)
def test_claude_and_codex_attempt_one_task_and_the_human_lands_one(
    rig_for: RigFor, tmp_path: Path
) -> None:
    rig = rig_for("claude")
    env = {**rig.ctx.env, **_CONFIGURE["codex"](rig.home, rig.server)}  # one home, both CLIs
    rig.ctx = replace(rig.ctx, env=env)
    answer_first_run_prompts(rig)
    answer_first_run_prompts(Rig("codex", rig.server, rig.ctx, rig.home))
    runners = {cli: dict(PRESETS[cli]) for cli in ("claude", "codex")}
    rig.ctx.paths.config.write_text(json.dumps({"default": "claude", "runners": runners}) + "\n")
    root = rig.ctx.paths.data
    repo = git_repo(tmp_path / "app", "app.py", "def f(x):\n    return x\n")
    claude = json.loads((rig.home / ".claude.json").read_text())  # its checkout trusted too
    claude["projects"][f"{root}.work/checkouts/fix.1"] = {"hasTrustDialogAccepted": True}
    (rig.home / ".claude.json").write_text(json.dumps(claude))
    with (rig.home / ".codex" / "config.toml").open("a") as f:  # as a user's first trust
        f.write(f'\n[projects."{repo}"]\ntrust_level = "trusted"\n')
    rig.server.worker_steps_by_api = STEPS
    base = git(repo, "rev-parse", "main").strip()

    started = rig.looop(
        "worker", "start", "fix", f"{PROBE_MARK} Make f double its argument.",
        "--repo", str(repo), "--attempts", "claude,codex",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    try:
        for n in (1, 2):  # each commits its own change on its own branch
            branch = f"looop/fix.{n}"

            def moved(b: str = branch) -> bool:
                return git(repo, "rev-parse", b).strip() != base

            _until(moved, 240, branch, root)

        def picked() -> bool:  # the beat looks at their screens; `needs` says what it found
            assert rig.looop("tick").returncode == 0
            return "2 attempts ended: pick one" in rig.looop("needs").stdout

        _until(picked, 150, "both attempts to wait at their prompts", root)
        shown = rig.looop("review", "fix")
        assert shown.returncode == 0, shown.stderr
        rows = {ln.split()[0]: ln.split() for ln in shown.stdout.splitlines() if "fix." in ln}
        assert [rows[f"fix.{n}"][1] for n in (1, 2)] == ["waiting", "waiting"], shown.stdout
        assert all(rows[f"fix.{n}"][3:6] == ["1", "+1", "-1"] for n in (1, 2)), shown.stdout
        differ = rig.looop("worker", "diff", "fix.1", "fix.2")
        assert "-    return x * 2" in differ.stdout and "+    return x + x" in differ.stdout

        landed = rig.looop("land", "fix", "--pick", "2")
        assert landed.returncode == 0, landed.stderr + landed.stdout
        assert "landed worker fix.2" in landed.stdout
        assert (repo / "app.py").read_text() == "def f(x):\n    return x + x\n"  # codex's
        _until(lambda: not get_session(root, "fix.1").alive, 30, "claude's attempt to stop", root)
        assert git(repo, "log", "-1", "--format=%s", "looop/fix.1").strip() == "double by product"
        journal = rig.ctx.paths.journal.read_text()
        assert "picked attempt fix.2 of fix; the others: fix.1 waiting" in journal, journal
        assert "pick one" not in rig.looop("needs").stdout
    finally:
        for n in (1, 2):
            if get_session(root, f"fix.{n}").alive:
                kill(root, f"fix.{n}")
