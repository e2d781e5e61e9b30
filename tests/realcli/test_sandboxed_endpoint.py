"""The real CLIs inside the sandbox (the real srt and bubblewrap), pointed at a local model
endpoint the way each is configured — claude by ANTHROPIC_BASE_URL, gemini by
GOOGLE_GEMINI_BASE_URL, pi and codex by their own provider files — with no `domains` in the
config: the endpoint is let through by itself
(opencode's config folder is read-only inside, where opencode 1.x writes a .gitignore at start:
it does not run sandboxed yet). And a claude whose endpoint the sandbox does not let through
fails its beat at once (claude retries the proxy's refusal of a TLS tunnel for minutes), its
one line naming the endpoint, where it was set and the config key that allows it."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import replace

import pytest

from looop.home.clock import SystemClock
from tests.realcli.harness import Rig
from tests.sandbox.install import install

RigFor = Callable[[str], Rig]


def _sandbox_on(rig: Rig) -> Rig:
    ctx = replace(rig.ctx, env={**rig.ctx.env, "LOOOP_SRT": str(install())})
    cfg = json.loads(ctx.paths.config.read_text())
    cfg["sandbox"] = "on"  # no domains: only what the runner is pointed at
    ctx.paths.config.write_text(json.dumps(cfg))
    return replace(rig, ctx=ctx)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("cli", ["claude", "pi", "codex", "gemini"])
def test_a_real_cli_reaches_its_configured_local_endpoint_from_the_sandbox(
    rig_for: RigFor, cli: str
) -> None:
    rig = _sandbox_on(rig_for(cli))
    _decides_a_goal(rig, "local", "goal: through the local endpoint")
    settings = (rig.ctx.paths.data / "sandbox" / "+tick" / "srt.json").read_text()
    assert f"127.0.0.1:{rig.server.port}" in settings  # allowed by itself, not by the config


@pytest.mark.timeout(180)
@pytest.mark.skipif(os.geteuid() != 0, reason="claude refuses its bypass flag only to root")
def test_a_real_claude_decides_sandboxed_as_root_without_is_sandbox_in_the_pulses_env(
    rig_for: RigFor,
) -> None:
    """As root, claude takes --dangerously-skip-permissions (its preset's flag) only when told
    it runs in a sandbox: inside srt looop tells it so, so a root user's pulse needs nothing
    set (every sandboxed claude decide failed before: "cannot be used with root/sudo")."""
    rig = _sandbox_on(rig_for("claude"))
    env = {k: v for k, v in rig.ctx.env.items() if k != "IS_SANDBOX"}
    _decides_a_goal(replace(rig, ctx=replace(rig.ctx, env=env)), "root", "goal: as root, boxed")


def _decides_a_goal(rig: Rig, gid: str, body: str) -> None:
    """A sandboxed beat of the rig's real CLI decides the scripted write_goal, and it lands."""
    from looop.loop.tick import tick  # lazy: the beat's machinery, for these tests only

    rig.server.decision = {"action": "write_goal", "id": gid, "body": body, "journal": gid}
    out = tick(rig.ctx)
    assert out.status == "decided", (out.error, rig.raw[-20:])
    assert (rig.ctx.paths.goals / f"{gid}.md").read_text() == body + "\n"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_real_claude_refused_by_the_sandbox_fails_its_beat_in_seconds(
    rig_for: RigFor, scheme: str
) -> None:
    """claude's endpoint set in its own settings file to a host off this machine: a file a
    worker could have planted, so not let through by itself. claude's own retries stay at its
    default (the harness's cap is taken off)."""
    from looop.loop.tick import tick  # lazy: the beat's machinery, for this test only

    rig = _sandbox_on(rig_for("claude"))
    env = {k: v for k, v in rig.ctx.env.items() if k not in ("ANTHROPIC_BASE_URL",)}
    env.pop("CLAUDE_CODE_MAX_RETRIES", None)
    settings = rig.home / ".claude" / "settings.json"
    settings.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(settings.read_text()) if settings.exists() else {}
    old["env"] = {"ANTHROPIC_BASE_URL": f"{scheme}://model.not-listed.example"}
    settings.write_text(json.dumps(old))
    rig = replace(rig, ctx=replace(rig.ctx, env=env))
    clock = SystemClock()
    began = clock.monotonic()
    out = tick(rig.ctx)
    took = clock.monotonic() - began
    assert out.status != "decided"
    assert took < 30, (took, out.error)
    print(f"claude refused over {scheme}: failed after {took:.1f}s: {out.error}")
    assert out.error is not None
    port = 443 if scheme == "https" else 80
    want = f"the tick runner 'claude' is pointed at model.not-listed.example:{port} ({settings}"
    assert want in out.error, out.error
    assert f'add "model.not-listed.example:{port}" to the config\'s "sandbox": {{"domains"' in (
        out.error
    )
