"""`looop init --sandbox/--no-sandbox` writes the config's `sandbox`, a re-init without the
flag keeps it, and an init that turns it on where srt cannot run says what is missing."""

from __future__ import annotations

import io
import json
import shutil
import sys
from pathlib import Path

import pytest

from looop.core.context import ctx_for
from looop.home.paths import Paths
from tests.clocks import FixedClock
from tests.helpers import Cli, clean_env


def _sandbox(data: Path) -> object:
    return json.loads((data / "config.json").read_text()).get("sandbox")


def test_init_sets_and_keeps_the_sandbox_setting(data: Path, cli: Cli) -> None:
    code, out, _ = cli("init", "--runner", "claude", "--sandbox", env_extra={"PATH": "/nonexist"})
    assert code == 0
    assert _sandbox(data) == "on"
    # the decide call runs inside srt too (its runner sets nothing else): the summary says so
    assert "sandbox: on — the decider and every worker run inside srt" in out
    # PATH holds no srt, node, bwrap, socat or rg: the line names them, the init still succeeds
    warning = next(ln for ln in out.splitlines() if ln.startswith("warning: the sandbox"))
    assert "srt" in warning and "bwrap (apt-get install bubblewrap)" in warning
    code, out, _ = cli("init", "--runner", "claude", "--force")
    assert code == 0 and _sandbox(data) == "on"  # a re-init keeps it
    code, out, _ = cli("init", "--runner", "pi", "--force", "--no-sandbox")
    assert code == 0 and _sandbox(data) == "off"
    assert "sandbox: on" not in out
    code, _, err = cli("worker", "start", "w1", "go", "--command", "sleep 600 # {{prompt_file}}")
    assert code == 0, err
    code, out, _ = cli("ls", "--json")
    assert [r["sandboxed"] for r in json.loads(out) if r["id"] == "w1"] == [False]
    cli("kill", "w1")


def _tools(tmp_path: Path, names: tuple[str, ...]) -> str:
    """A PATH folder holding executables with these names (what `missing()` looks for)."""
    bin_dir = tmp_path / "tools"
    bin_dir.mkdir(exist_ok=True)
    for name in names:
        f = bin_dir / name
        f.write_text("#!/bin/sh\nexit 0\n")
        f.chmod(0o755)
    return str(bin_dir)


ALL_PARTS = ("srt", "node", "bwrap", "socat", "rg")


def _ask_init(
    tmp_path: Path,
    data: Path,
    answers: str,
    path: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    sandbox: bool | None = None,
) -> tuple[object, str]:
    """`looop init` answered on stdin as a human would (interactive); (sandbox, output)."""
    from looop.loop.setup import init_config

    monkeypatch.setattr(sys, "stdin", io.StringIO(answers))
    ctx = ctx_for(clean_env(tmp_path, data, PATH=path), FixedClock(), None)
    lines = init_config(ctx, None, None, None, True, True, sandbox=sandbox)
    out = capsys.readouterr().out
    return _sandbox(data), out + "\n".join(lines)


@pytest.mark.parametrize(
    ("parts", "answer", "want"),
    [
        (ALL_PARTS, "", "on"),  # srt can run here: yes is the default
        (ALL_PARTS, "n", "off"),
        ((), "", "off"),  # it cannot: the default is no, after the line naming what is missing
        ((), "y", "on"),
    ],
)
def test_an_interactive_init_asks_about_the_sandbox(
    tmp_path: Path,
    data: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    parts: tuple[str, ...],
    answer: str,
    want: str,
) -> None:
    path = _tools(tmp_path, parts)
    got, out = _ask_init(tmp_path, data, f"claude\n\n\n{answer}\n", path, capsys, monkeypatch)
    assert got == want
    assert "sandbox" in out.lower()
    default = "[Y/n]" if parts else "[y/N]"
    assert default in out
    if parts:
        assert "cannot run here yet" not in out
    else:
        assert "the sandbox cannot run here yet — missing srt" in out


def test_the_flag_skips_the_question_and_keeps_a_policy(
    tmp_path: Path,
    data: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = _tools(tmp_path, ALL_PARTS)
    # three answers only: a fourth question would read EOF and cancel the init
    got, out = _ask_init(tmp_path, data, "claude\n\n\n", path, capsys, monkeypatch, True)
    assert got == "on" and "[Y/n]" not in out
    policy = {"domains": ["example.com"]}
    cfg = json.loads((data / "config.json").read_text())
    (data / "config.json").write_text(json.dumps({**cfg, "sandbox": policy}))
    got, _ = _ask_init(tmp_path, data, "y\nclaude\n\n\n", path, capsys, monkeypatch, True)
    assert got == policy  # --sandbox on a config whose policy is on keeps that policy
    got, _ = _ask_init(tmp_path, data, "y\nclaude\n\n\n\n", path, capsys, monkeypatch)
    assert got == policy  # and so does a yes to the question


def test_a_worker_start_where_the_sandbox_cannot_run_fails_with_one_line(
    data: Path, cli: Cli, tmp_path: Path
) -> None:
    """Never a silent fallback: the start fails, names every missing part and how to get
    it, and nothing is left behind (no session, no worktree, no branch)."""
    import subprocess

    repo = tmp_path / "repo"
    repo.mkdir()
    for args in (
        ["init", "-q", "-b", "main"],
        ["-c", "user.name=T", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "s"],
    ):
        subprocess.run(["git", "-C", str(repo), *args], check=True, timeout=30)
    assert cli("init", "--runner", "claude", "--sandbox")[0] == 0
    only_git = tmp_path / "only-git"
    only_git.mkdir()
    (only_git / "git").symlink_to(shutil.which("git") or "/usr/bin/git")
    bare = {"PATH": str(only_git)}  # none of srt's parts
    code, out, err = cli(
        "worker",
        "start",
        "w1",
        "go",
        "--command",
        "sleep 600 # {{prompt_file}}",
        "--repo",
        str(repo),
        env_extra=bare,
    )
    assert code != 0 and out == ""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "worker w1 cannot run sandboxed: missing srt (npm install -g" in lines[0]
    assert "bwrap (apt-get install bubblewrap)" in lines[0] and "--no-sandbox" in lines[0]
    assert not (data / "sessions" / "w1").exists()
    assert not (Paths.at(data).checkouts / "w1").exists()
    branches = subprocess.run(
        ["git", "-C", str(repo), "branch", "--list"], capture_output=True, text=True, timeout=30
    ).stdout
    assert "looop/w1" not in branches


@pytest.mark.parametrize(("parts", "want"), [(ALL_PARTS, "on"), (("node", "bwrap"), "off")])
def test_an_init_without_flag_or_question_sandboxes_wherever_srt_can_run(
    tmp_path: Path, data: Path, cli: Cli, parts: tuple[str, ...], want: str
) -> None:
    path = _tools(tmp_path, parts)
    code, out, _ = cli("init", "--runner", "claude", env_extra={"PATH": path})
    assert code == 0 and _sandbox(data) == want
    if want == "off":  # said, never silent: what is missing and how to turn it on later
        line = next(ln for ln in out.splitlines() if "sandbox: off" in ln)
        assert "missing srt" in line and "socat" in line and "init --sandbox --force" in line
    else:
        assert "sandbox: on" in out and "sandbox: off" not in out
    # a re-init without a flag keeps what the first one chose, whatever PATH says now
    code, _, _ = cli("init", "--runner", "pi", "--force", env_extra={"PATH": "/nonexistent"})
    assert code == 0 and _sandbox(data) == want


def test_init_names_the_model_endpoint_the_sandbox_lets_through(
    tmp_path: Path, data: Path, cli: Cli
) -> None:
    url = {"ANTHROPIC_BASE_URL": "http://127.0.0.1:7777/anthropic"}
    code, out, _ = cli("init", "--runner", "claude", "--sandbox", env_extra=url)
    assert code == 0
    assert "sandbox: model endpoint 127.0.0.1:7777 allowed (from ANTHROPIC_BASE_URL)" in out
    # pi's provider file names a host off this machine: named, with the key that allows it
    models = tmp_path / ".pi" / "agent" / "models.json"
    models.parent.mkdir(parents=True)
    models.write_text(json.dumps({"providers": {"corp": {"baseUrl": "https://llm.corp.example"}}}))
    code, out, _ = cli("init", "--runner", "pi", "--sandbox", "--force")
    assert code == 0
    line = next(ln for ln in out.splitlines() if "llm.corp.example:443" in ln)
    assert "not allowed by itself" in line and '"domains"' in line and str(models) in line
    # sandbox off: nothing to say about it
    code, out, _ = cli("init", "--runner", "claude", "--no-sandbox", "--force", env_extra=url)
    assert code == 0 and "model endpoint" not in out
