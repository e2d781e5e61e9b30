"""The real claude, pi, codex, opencode and gemini TUIs as sandboxed workers (the real srt and
bubblewrap) against the local scripted model server, allowlisted: each does its job — the brief
answered on screen — while its sandbox stands: its own shell tool reads no planted key and
reaches no other server, and the files the user's own CLI reads outside stay as they were."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from looop.home.errors import LooopError
from looop.home.paths import Paths
from looop.home.sandboxpolicy import SandboxPolicy
from looop.sandbox.srt import RUNNER_CONFIG, RUNNER_LOCKED, RUNNER_PLACEHOLDERS, RUNNER_STATE
from looop.sessions.client import expect, kill, screenshot, send, send_keys
from looop.sessions.state import get_session
from looop.workers.launch import start_worker
from looop.workers.started import StartRequest
from tests.realcli.harness import CLIS, Rig, answer_first_run_prompts
from tests.realcli.model_server import PROBE_MARK
from tests.sandbox.install import install
from tests.sandbox.test_sandboxed_worker import SECRET, Server

RigFor = Callable[[str], Rig]


def _screen(root: Path, sid: str) -> str:
    return str(screenshot(root, sid, "plain", trim=True).get("text", ""))


def _users_files(rig: Rig) -> dict[str, bytes]:
    """Every file of the CLI's own config the user's CLI reads outside (RUNNER_CONFIG), but
    its session folders (RUNNER_STATE, written in a session) and codex's databases: by path."""
    home = str(rig.home)
    state = [os.path.join(home, s[2:]) for s in RUNNER_STATE[rig.cli]]
    # what stays read-only inside its writable state (a folder's entries end in "/")
    fixed = [os.path.join(home, s[2:]) for s in RUNNER_LOCKED.get(rig.cli, ())]
    out: dict[str, bytes] = {}
    for item in RUNNER_CONFIG[rig.cli]:
        top = os.path.join(home, item[2:])
        paths = [top] if os.path.isfile(top) else []
        for d, dirs, files in os.walk(top):
            dirs[:] = [x for x in dirs if x != "node_modules"]
            paths.extend(os.path.join(d, f) for f in files)
        for path in paths:
            locked = rig.cli == "codex" and path.endswith((".toml", ".md", ".json"))
            locked = locked or any(
                path == f or (f.endswith("/") and path.startswith(f)) for f in fixed
            )
            if locked or not any(path == s or path.startswith(s + "/") for s in state):
                out[path] = Path(path).read_bytes()
    return out


@pytest.mark.timeout(180)
@pytest.mark.parametrize("cli", CLIS)
def test_a_real_cli_does_its_job_inside_the_sandbox(rig_for: RigFor, cli: str) -> None:
    """Each preset's real CLI, set up as a returning user has it, starts its task in the box
    with no key pressed (its brief is its first model call's), and leaves the files the user's
    own CLI reads outside as they were."""
    rig = rig_for(cli)
    srt = install()
    answer_first_run_prompts(rig)
    if cli == "codex":  # the user's own instructions, which the box's empty override leaves be
        (rig.home / ".codex" / "AGENTS.md").write_text("Sign off as AGENTSMARK7.\n")
    before = _users_files(rig)
    assert before  # the CLI's config is there to keep
    ctx = replace(rig.ctx, env={**rig.ctx.env, "LOOOP_SRT": str(srt)})
    root = ctx.paths.data
    port = rig.server.port
    policy = SandboxPolicy(True, domains=(f"127.0.0.1:{port}",))
    start_worker(
        ctx, ctx.knobs(), StartRequest("w1", "Greet the fleet. ECHO:brief42", sandbox=policy)
    )
    assert (root / "sandbox" / "w1" / "srt.json").is_file()
    # the CLI runs inside the box (the launcher becomes bubblewrap's line as the home's host
    # wraps it under the worker's settings), not beside it
    cmd = get_session(root, "w1").cmd
    assert cmd[1:3] == ["-m", "looop.sandbox.boxrun"] and cmd[6] == str(
        root / "sandbox" / "w1" / "srt.json"
    ), cmd[:7]
    code, _, _ = expect(root, "w1", r"ANSWER:brief42", screen=True, timeout_s=90, clock=ctx.clock)
    assert code == 0, _screen(root, "w1")
    assert "brief42" in next(c for c in rig.server.model_calls() if "ECHO:" in c.text()).text()
    kill(root, "w1")
    assert not get_session(root, "w1").alive
    # as they were, but the placeholders made where the user had none (RUNNER_PLACEHOLDERS),
    # which the real CLI took for none: it started, answered, and still read AGENTS.md
    made = {
        path: none.encode()
        for item, none in RUNNER_PLACEHOLDERS.get(cli, ())
        if (path := os.path.join(str(rig.home), item[2:])) not in before
    }
    assert _users_files(rig) == {**before, **made}
    if cli == "codex":
        assert made and all(Path(p).exists() for p in made)
        assert "AGENTSMARK7" in rig.server.model_calls()[0].text()


@pytest.mark.timeout(180)
@pytest.mark.parametrize("cli", ["claude", "pi"])
def test_a_real_cli_in_the_sandbox_cannot_read_a_key_nor_reach_another_server(
    rig_for: RigFor, cli: str
) -> None:
    """The model has the CLI's own shell tool read a planted ~/.ssh/id_ed25519 and call a
    second loopback server that is not allowlisted; the CLI still does its job (the brief
    answered through the allowlisted model server), and neither attempt gets anything."""
    rig = rig_for(cli)
    srt = install()
    answer_first_run_prompts(rig)
    key = rig.home / ".ssh" / "id_ed25519"
    key.parent.mkdir(parents=True, exist_ok=True)
    key.write_text(SECRET + "\n")
    other = Server("other-server-reached")
    try:
        probe = (
            f'out="$LOOOP_WORKSPACE/probe"; k=$(cat {key} 2>&1); echo "key=$k" > "$out"; '
            f"n=$(curl -s -m 10 http://127.0.0.1:{other.port}/ 2>&1); "
            'echo "net=${n:-none}" >> "$out"; echo probed >> "$out"'
        )
        rig.server.worker_shell = probe
        ctx = replace(rig.ctx, env={**rig.ctx.env, "LOOOP_SRT": str(srt)})
        root = ctx.paths.data
        policy = SandboxPolicy(True, domains=(f"127.0.0.1:{rig.server.port}",))
        brief = f"{PROBE_MARK} then greet the fleet. ECHO:brief43"
        start_worker(ctx, ctx.knobs(), StartRequest("w1", brief, sandbox=policy))
        code, _, _ = expect(
            root, "w1", r"ANSWER:brief43", screen=True, timeout_s=90, clock=ctx.clock
        )
        assert code == 0, _screen(root, "w1")
        got = (Paths.at(root).rooms / "w1" / "work" / "probe").read_text()
        assert "probed" in got, got  # the shell tool ran, inside the sandbox
        assert SECRET not in got
        assert "other-server-reached" not in got and other.hits == 0
        kill(root, "w1")
    finally:
        other.close()


@pytest.mark.timeout(180)
@pytest.mark.parametrize("cli", ["claude", "pi"])
def test_a_real_cli_decides_a_beat_inside_the_sandbox(rig_for: RigFor, cli: str) -> None:
    """The runner's `sandbox` covers its decide call: the real CLI, under srt with only the
    model server allowlisted, writes its decision and the beat acts on it."""
    from looop.loop.tick import tick  # lazy: the beat's machinery, for this test only

    rig = rig_for(cli)
    srt = install()
    ctx = replace(rig.ctx, env={**rig.ctx.env, "LOOOP_SRT": str(srt)})
    cfg = json.loads(ctx.paths.config.read_text())
    cfg["sandbox"] = {"domains": [f"127.0.0.1:{rig.server.port}"]}
    ctx.paths.config.write_text(json.dumps(cfg))
    rig.server.decision = {
        "action": "write_goal",
        "id": "boxed",
        "body": "goal: decided in the box",
        "journal": "decided in the box",
    }
    out = tick(ctx)
    assert out.status == "decided", (out.error, rig.raw[-20:])
    assert (ctx.paths.data / "sandbox" / "+tick" / "srt.json").is_file()  # it ran under srt
    assert (ctx.paths.goals / "boxed.md").read_text() == "goal: decided in the box\n"
    assert not ctx.paths.decision.exists()


@pytest.mark.timeout(180)
def test_the_real_claude_tui_takes_ctrl_c_inside_the_sandbox(rig_for: RigFor) -> None:
    """One Ctrl-C (`looop key W C-c`'s bytes) reaches claude itself, which asks for a second
    one; the worker lives on and answers the next brief line."""
    rig = rig_for("claude")
    srt = install()
    answer_first_run_prompts(rig)
    ctx = replace(rig.ctx, env={**rig.ctx.env, "LOOOP_SRT": str(srt)})
    root = ctx.paths.data
    policy = SandboxPolicy(True, domains=(f"127.0.0.1:{rig.server.port}",))
    start_worker(
        ctx, ctx.knobs(), StartRequest("w1", "Greet the fleet. ECHO:brief42", sandbox=policy)
    )
    try:
        code, _, _ = expect(
            root, "w1", r"ANSWER:brief42", screen=True, timeout_s=90, clock=ctx.clock
        )
        assert code == 0, _screen(root, "w1")
        # claude may offer a dialog after its first answer ("Not now" closes it)
        for _ in range(3):
            if "fullscreen renderer" in _screen(root, "w1"):
                send_keys(root, "w1", ["Down", "Enter"])
            send_keys(root, "w1", ["C-c"])
            code, _, _ = expect(
                root, "w1", r"(?i)again to exit", screen=True, timeout_s=10, clock=ctx.clock
            )
            if code == 0:
                break
        assert code == 0, _screen(root, "w1")
        assert get_session(root, "w1").alive
    finally:
        kill(root, "w1")


def _returning_user_without_trust(rig: Rig) -> None:
    """~/.claude.json as a user who has run claude (onboarded, the key approved) has it, with
    trust for their own project only: never for the worker's folder."""
    answer_first_run_prompts(rig)
    path = rig.home / ".claude.json"
    state = json.loads(path.read_text())
    state["projects"] = {str(rig.home / "my-project"): {"hasTrustDialogAccepted": True}}
    path.write_text(json.dumps(state, indent=2) + "\n")


@pytest.mark.timeout(180)
def test_a_returning_users_sandboxed_claude_starts_its_task_with_nothing_to_answer(
    rig_for: RigFor,
) -> None:
    """No trust for the worker's folder in ~/.claude.json, no key pressed: the real claude in
    the box reaches the model with its brief (claude's own sandboxed-session trust), the trust,
    key and fullscreen-renderer prompts never drawn, and the user's file not rewritten."""
    rig = rig_for("claude")
    srt = install()
    _returning_user_without_trust(rig)
    before = (rig.home / ".claude.json").read_text()
    ctx = replace(rig.ctx, env={**rig.ctx.env, "LOOOP_SRT": str(srt)})
    root = ctx.paths.data
    policy = SandboxPolicy(True, domains=(f"127.0.0.1:{rig.server.port}",))
    start_worker(
        ctx, ctx.knobs(), StartRequest("w1", "Greet the fleet. ECHO:brief44", sandbox=policy)
    )
    try:
        code, _, _ = expect(
            root, "w1", r"ANSWER:brief44", screen=True, timeout_s=90, clock=ctx.clock
        )
        assert code == 0, _screen(root, "w1")
        assert any("brief44" in call.text() for call in rig.server.model_calls())
        # the next line reaches claude's prompt: no dialog (the fullscreen offer) took the keys
        send(root, "w1", "And again. ECHO:brief45", newline=False)
        code, _, _ = expect(root, "w1", r"again\. ECHO", screen=True, timeout_s=20, clock=ctx.clock)
        assert code == 0, _screen(root, "w1")  # typed at claude's prompt, not into a dialog
        send_keys(root, "w1", ["Enter"])
        code, _, _ = expect(
            root, "w1", r"ANSWER:brief45", screen=True, timeout_s=60, clock=ctx.clock
        )
        assert code == 0, _screen(root, "w1")
        drawn = (root / "sessions" / "w1" / "output.log").read_bytes().decode("utf-8", "replace")
        for prompt in ("trust this folder", "use this API key", "fullscreen renderer"):
            assert prompt not in drawn, _screen(root, "w1")
        assert (
            json.loads((rig.home / ".claude.json").read_text())["projects"]
            == json.loads(before)["projects"]
        )  # trust for the worker's folder was never planted in the user's file
    finally:
        kill(root, "w1")


@pytest.mark.timeout(60)
def test_a_sandboxed_claude_for_a_user_whose_claude_never_ran_says_what_to_run_once(
    rig_for: RigFor,
) -> None:
    rig = rig_for("claude")
    srt = install()
    ctx = replace(rig.ctx, env={**rig.ctx.env, "LOOOP_SRT": str(srt)})
    policy = SandboxPolicy(True, domains=(f"127.0.0.1:{rig.server.port}",))
    with pytest.raises(LooopError) as e:
        start_worker(ctx, ctx.knobs(), StartRequest("w1", "Greet the fleet.", sandbox=policy))
    assert "run `claude` once outside looop" in str(e.value) and "\n" not in str(e.value)
    assert not (ctx.paths.data / "sessions" / "w1" / "output.log").exists()


@pytest.mark.timeout(60)
def test_a_sandboxed_opencode_for_a_user_whose_opencode_never_ran_says_what_to_run_once(
    rig_for: RigFor,
) -> None:
    rig = rig_for("opencode")
    srt = install()
    (rig.home / ".config" / "opencode" / ".gitignore").unlink()  # as before its first start
    ctx = replace(rig.ctx, env={**rig.ctx.env, "LOOOP_SRT": str(srt)})
    policy = SandboxPolicy(True, domains=(f"127.0.0.1:{rig.server.port}",))
    with pytest.raises(LooopError) as e:
        start_worker(ctx, ctx.knobs(), StartRequest("w1", "Greet the fleet.", sandbox=policy))
    assert "run `opencode` once outside looop" in str(e.value) and "\n" not in str(e.value)
    assert not (ctx.paths.data / "sessions" / "w1" / "output.log").exists()


def _never_signed_in(rig: Rig) -> None:
    """codex as before its first start: no login, no config.toml (the harness's is its own)."""
    (rig.home / ".codex" / "config.toml").unlink()


def _never_chose_a_login(rig: Rig) -> None:
    """gemini as before its first start: settings.json names no way to log in."""
    path = rig.home / ".gemini" / "settings.json"
    settings = json.loads(path.read_text())
    del settings["security"]
    path.write_text(json.dumps(settings, indent=2) + "\n")


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("cli", "unset"), [("codex", _never_signed_in), ("gemini", _never_chose_a_login)]
)
def test_a_sandboxed_cli_that_never_ran_says_what_to_run_once(
    rig_for: RigFor, cli: str, unset: Callable[[Rig], None]
) -> None:
    """Started anyway, each stops in the box at its sign-in screen ("Welcome to Codex", "How
    would you like to authenticate"), whose answer it could not save there: refused instead,
    in one line."""
    rig = rig_for(cli)
    srt = install()
    unset(rig)
    ctx = replace(rig.ctx, env={**rig.ctx.env, "LOOOP_SRT": str(srt)})
    policy = SandboxPolicy(True, domains=(f"127.0.0.1:{rig.server.port}",))
    with pytest.raises(LooopError) as e:
        start_worker(ctx, ctx.knobs(), StartRequest("w1", "Greet the fleet.", sandbox=policy))
    assert f"run `{cli}` once outside looop" in str(e.value) and "\n" not in str(e.value)
    assert not (ctx.paths.data / "sessions" / "w1" / "output.log").exists()
    assert not rig.server.model_calls()


def _returning_user_who_never_bypassed(rig: Rig) -> Path:
    """A returning user (onboarded, the key approved) who never ran claude in Bypass
    Permissions mode: their settings.json holds no skipDangerousModePermissionPrompt."""
    _returning_user_without_trust(rig)
    settings = rig.home / ".claude" / "settings.json"
    settings.write_text(json.dumps({"theme": "dark"}) + "\n")
    return settings


@pytest.mark.timeout(60)
def test_a_sandboxed_claude_for_a_user_who_never_accepted_bypass_mode_says_what_to_run_once(
    rig_for: RigFor,
) -> None:
    """The real claude stops such a start at its Bypass Permissions warning, whose "Yes, I
    accept" goes to settings.json, read-only in the box (asked again by every worker):
    refused instead, in one line, and the user's file left as it was."""
    rig = rig_for("claude")
    srt = install()
    settings = _returning_user_who_never_bypassed(rig)
    before = settings.read_bytes()
    ctx = replace(rig.ctx, env={**rig.ctx.env, "LOOOP_SRT": str(srt)})
    policy = SandboxPolicy(True, domains=(f"127.0.0.1:{rig.server.port}",))
    with pytest.raises(LooopError) as e:
        start_worker(ctx, ctx.knobs(), StartRequest("w1", "Greet the fleet.", sandbox=policy))
    said = str(e.value)
    assert "run `claude --dangerously-skip-permissions` once outside looop" in said, said
    assert "\n" not in said and str(settings) in said
    assert not (ctx.paths.data / "sessions" / "w1" / "output.log").exists()
    assert settings.read_bytes() == before and not rig.server.model_calls()


@pytest.mark.timeout(180)
def test_a_sandboxed_claude_whose_line_accepts_bypass_mode_starts_with_nothing_to_answer(
    rig_for: RigFor,
) -> None:
    """The same user's own worker line may accept the warning itself (claude reads its
    --settings as the user's answer): the real claude in the box then reaches the model with
    its brief, no warning drawn."""
    rig = rig_for("claude")
    srt = install()
    _returning_user_who_never_bypassed(rig)
    preset = rig.ctx.config().runners["claude"].worker or ""
    line = preset.replace(
        """'{"tui":"default"}'""",
        """'{"tui":"default","skipDangerousModePermissionPrompt":true}'""",
    )
    assert line != preset, preset
    ctx = replace(rig.ctx, env={**rig.ctx.env, "LOOOP_SRT": str(srt)})
    root = ctx.paths.data
    policy = SandboxPolicy(True, domains=(f"127.0.0.1:{rig.server.port}",))
    start = StartRequest("w1", "Greet the fleet. ECHO:brief47", command=line, sandbox=policy)
    start_worker(ctx, ctx.knobs(), start)
    try:
        code, _, _ = expect(
            root, "w1", r"ANSWER:brief47", screen=True, timeout_s=90, clock=ctx.clock
        )
        assert code == 0, _screen(root, "w1")
        drawn = (root / "sessions" / "w1" / "output.log").read_bytes().decode("utf-8", "replace")
        assert "Bypass Permissions mode" not in drawn, _screen(root, "w1")
    finally:
        kill(root, "w1")
