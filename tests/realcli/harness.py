"""Point each real agent CLI at the scripted model server, with environment and config files
only, inside a throwaway home: the user's own home and config are never read or written.

What each CLI needed is documented in tests/realcli/README.md.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

import looop.decide.spend as spend_module
from looop.core.context import Ctx
from looop.decide.runner import RunResult, run_runner
from looop.runners.presets import PRESETS
from tests.realcli.install import BINARIES, GEMINI_VERSION, gemini_dir, opencode_sdk_dir
from tests.realcli.install import bin_dir as npm_bin
from tests.realcli.model_server import ModelServer

CLIS = ("claude", "codex", "pi", "opencode", "gemini")
VERSIONS = {**{name: ver for name, (_pkg, ver) in BINARIES.items()}, "gemini": GEMINI_VERSION}
TEST_KEY = "sk-looop-realcli-test-key"
CODEX_MODEL = "gpt-5.5"  # a model codex 0.169 has metadata for (else it warns on every run)
OPENCODE_MODEL = "scripted-model"
# opencode 1.18.33 writes this .gitignore into its config dir on its first start
OPENCODE_GITIGNORE = ("node_modules", "package.json", "package-lock.json", "bun.lock", ".gitignore")
STREAMS = Path(__file__).resolve().parent / "streams"
RECORD_ENV = "LOOOP_REALCLI_RECORD"  # =1 re-records every stream even if one is on disk


def _node_dir() -> str:
    node = shutil.which("node")
    return str(Path(node).parent) if node else "/usr/bin"


def base_env(home: Path, server: ModelServer, bin_dir: Path) -> dict[str, str]:
    """What every CLI gets: a temp home, the cache's binaries first on PATH, and the model
    server as HTTP(S) proxy, so any attempt to reach the internet is refused and recorded."""
    no_proxy = "127.0.0.1,localhost"
    return {
        "PATH": f"{bin_dir}:{npm_bin(gemini_dir())}:{_node_dir()}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "LANG": "C.UTF-8",
        "TERM": "xterm-256color",
        "LOOOP_RUNTIME_DIR": os.environ["LOOOP_RUNTIME_DIR"],  # the run's own hosts
        "HTTPS_PROXY": server.url,
        "HTTP_PROXY": server.url,
        "https_proxy": server.url,
        "http_proxy": server.url,
        "NO_PROXY": no_proxy,
        "no_proxy": no_proxy,
        # were opencode's plugin SDK missing from its config dir, it would npm-install it
        "npm_config_offline": "true",
    }


def _claude(home: Path, server: ModelServer) -> dict[str, str]:
    return {
        "ANTHROPIC_BASE_URL": server.url,
        "ANTHROPIC_API_KEY": TEST_KEY,
        # as root, --dangerously-skip-permissions is refused unless the box says it is a sandbox
        "IS_SANDBOX": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        # claude ignores retry-after on a 500 and backs off for minutes over 10 retries
        "CLAUDE_CODE_MAX_RETRIES": "1",
    }


def _codex(home: Path, server: ModelServer) -> dict[str, str]:
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    (codex_home / "config.toml").write_text(
        f'model = "{CODEX_MODEL}"\n'
        'model_provider = "looop_test"\n'
        "check_for_update_on_startup = false\n"
        "\n"
        "[analytics]\n"
        "enabled = false\n"
        "\n"
        "[features]\n"
        "plugins = false\n"
        "\n"
        "[model_providers.looop_test]\n"
        'name = "looop scripted model server"\n'
        f'base_url = "{server.url}/v1"\n'
        'wire_api = "responses"\n'
        'env_key = "LOOOP_TEST_API_KEY"\n'
        "request_max_retries = 0\n"
        "stream_max_retries = 1\n"
    )
    return {"CODEX_HOME": str(codex_home), "LOOOP_TEST_API_KEY": TEST_KEY}


def _pi(home: Path, server: ModelServer) -> dict[str, str]:
    agent = home / ".pi" / "agent"
    agent.mkdir(parents=True, exist_ok=True)
    # the preset's own --model (a built-in anthropic model) stays; only its endpoint moves
    (agent / "models.json").write_text(
        json.dumps({"providers": {"anthropic": {"baseUrl": server.url}}}, indent=2) + "\n"
    )
    # pi's agent-level retry waits 2 s, 4 s, 8 s by default
    (agent / "settings.json").write_text(
        json.dumps({"retry": {"baseDelayMs": 10}}, indent=2) + "\n"
    )
    return {"ANTHROPIC_API_KEY": TEST_KEY, "PI_OFFLINE": "1", "PI_SKIP_VERSION_CHECK": "1"}


def _opencode(home: Path, server: ModelServer) -> dict[str, str]:
    conf = home / ".config" / "opencode"
    conf.mkdir(parents=True, exist_ok=True)
    config = {
        "$schema": "https://opencode.ai/config.json",
        "model": f"looop/{OPENCODE_MODEL}",
        "autoupdate": False,
        "share": "disabled",
        "provider": {
            "looop": {
                "npm": "@ai-sdk/openai-compatible",
                "name": "looop scripted model server",
                "options": {"baseURL": f"{server.url}/v1", "apiKey": TEST_KEY},
                "models": {
                    OPENCODE_MODEL: {
                        "name": "Scripted model",
                        # USD per 1M tokens, so opencode reports a cost like a priced model
                        "cost": {"input": 3, "output": 15},
                    }
                },
            }
        },
    }
    (conf / "opencode.json").write_text(json.dumps(config, indent=2) + "\n")
    return {
        "OPENCODE_DISABLE_MODELS_FETCH": "1",
        "OPENCODE_DISABLE_AUTOUPDATE": "1",
        "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
    }


def _gemini(home: Path, server: ModelServer) -> dict[str, str]:
    conf = home / ".gemini"
    conf.mkdir(parents=True, exist_ok=True)
    settings = {
        # with GOOGLE_GEMINI_BASE_URL alone gemini 0.61 picks its "gateway" auth, which
        # headless mode refuses ("Invalid auth method selected"): an API key, moved
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        # else it posts usage to play.googleapis.com and looks for updates
        "privacy": {"usageStatisticsEnabled": False},
        # (tests only) one retry: it retries a 5xx 10 times, 5 s to 30 s apart
        "general": {
            "enableAutoUpdate": False,
            "enableAutoUpdateNotification": False,
            "maxAttempts": 2,
        },
    }
    (conf / "settings.json").write_text(json.dumps(settings, indent=2) + "\n")
    return {"GOOGLE_GEMINI_BASE_URL": server.url, "GEMINI_API_KEY": TEST_KEY}


_CONFIGURE: dict[str, Callable[[Path, ModelServer], dict[str, str]]] = {
    "claude": _claude,
    "codex": _codex,
    "pi": _pi,
    "opencode": _opencode,
    "gemini": _gemini,
}


def cli_env(cli: str, home: Path, server: ModelServer, bin_dir: Path) -> dict[str, str]:
    """Write the CLI's config files into `home` and return the environment it runs with."""
    home.mkdir(parents=True, exist_ok=True)
    env = base_env(home, server, bin_dir)
    env.update(_CONFIGURE[cli](home, server))
    if cli == "opencode":
        _opencode_sdk(home, opencode_sdk_dir(bin_dir.parent.parent))
    return env


def _opencode_sdk(home: Path, sdk: Path) -> None:
    """The config dir as a user's opencode leaves it after its first online start: its plugin
    SDK installed (install.py), so opencode does not try to install it on each run. Its
    node_modules is the cache's, linked: opencode only reads it once installed."""
    conf = home / ".config" / "opencode"
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(sdk / name, conf / name)
    # what its first start writes there when missing (a sandboxed start cannot: the folder is
    # read-only in the box, and opencode stops with "Unexpected server error")
    (conf / ".gitignore").write_text("\n".join(OPENCODE_GITIGNORE) + "\n")
    link = conf / "node_modules"
    if not link.is_symlink():
        link.symlink_to(sdk / "node_modules", target_is_directory=True)


@dataclass
class Rig:
    """One CLI, one scripted server, one data dir: a whole beat with the real program."""

    cli: str
    server: ModelServer
    ctx: Ctx
    home: Path
    raw: list[str] = field(default_factory=list)  # the runner's raw output, line by line

    def use_preset(self, **extra: object) -> None:
        """The data dir's config picks looop's own preset for this CLI, verbatim (plus `extra`
        top-level keys)."""
        cfg = {"default": self.cli, "runners": {self.cli: dict(PRESETS[self.cli])}, **extra}
        self.ctx.paths.config.write_text(json.dumps(cfg, indent=2) + "\n")

    def looop(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """The looop CLI as a user types it, against this data dir."""
        env = {**self.ctx.env, "LOOOP_DATA_DIR": str(self.ctx.paths.data), "PAGER": "cat"}
        return subprocess.run(
            [sys.executable, "-m", "looop", *args],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def output_log(self, run_id: str | None) -> str:
        assert run_id, "the beat made no run"
        return (self.ctx.paths.run_dir(run_id) / "output.log").read_text()

    def normalised_raw(self) -> list[str]:
        """The raw stream with this machine's temp paths and port taken out."""
        data, home, tmp = str(self.ctx.paths.data), str(self.home), str(self.ctx.paths.data.parent)
        swaps = [
            (data, "<DATA>"),
            (home, "<HOME>"),
            (tmp, "<TMP>"),
            # claude names per-project state after the path, every other character a dash
            (re.sub(r"[^A-Za-z0-9]", "-", data), "-DATA-"),
            (re.sub(r"[^A-Za-z0-9]", "-", home), "-HOME-"),
            (self.server.url, "http://127.0.0.1:<PORT>"),
            (f"127.0.0.1:{self.server.port}", "127.0.0.1:<PORT>"),
        ]
        out = []
        for line in self.raw:
            for old, new in swaps:
                line = line.replace(old, new)
            out.append(line.rstrip("\n"))
        return out

    def save_stream(self, scenario: str) -> Path:
        """Keep the raw stream as tests/realcli/streams/<cli>-<scenario>.jsonl. An existing
        recording is replaced only when the pinned version changed or LOOOP_REALCLI_RECORD=1,
        so an ordinary test run leaves the committed files alone."""
        STREAMS.mkdir(parents=True, exist_ok=True)
        path = STREAMS / f"{self.cli}-{scenario}.jsonl"
        versions_path = STREAMS / "versions.json"
        try:
            versions: dict[str, Any] = json.loads(versions_path.read_text())
        except (OSError, ValueError):
            versions = {}
        pinned = VERSIONS[self.cli]
        recorded = versions.get(path.name)
        force = os.environ.get(RECORD_ENV) == "1"
        if path.exists() and recorded == pinned and not force:
            return path
        path.write_text("".join(line + "\n" for line in self.normalised_raw()))
        versions[path.name] = pinned
        versions_path.write_text(json.dumps(versions, indent=2, sort_keys=True) + "\n")
        return path


def make_rig(
    cli: str,
    base: Ctx,
    server: ModelServer,
    bin_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Rig:
    home = base.paths.data.parent / f"home-{cli}"
    env = cli_env(cli, home, server, bin_dir)
    ctx = replace(base, env=env)
    server.workdir = str(ctx.paths.data)
    rig = Rig(cli=cli, server=server, ctx=ctx, home=home)
    rig.use_preset()
    monkeypatch.setattr(spend_module, "run_runner", _keeping(rig.raw))
    return rig


def _keeping(raw: list[str]) -> Callable[..., RunResult]:
    real = run_runner  # what decide/spend.py imported: the real runner

    def run_and_keep(*args: Any, **kwargs: Any) -> RunResult:
        kwargs["on_line"] = raw.append
        return real(*args, **kwargs)

    return run_and_keep


def answer_first_run_prompts(rig: Rig) -> None:
    """What a user answers once, by hand, before an interactive CLI can run unattended.

    claude's TUI otherwise stops at, in turn: onboarding (which also checks it can reach
    api.anthropic.com and exits when it cannot), "trust this folder?", "use this
    ANTHROPIC_API_KEY?" and the bypass-permissions warning. codex's TUI stops once at "Meet
    GPT-6 Sol" (switch model?); either answer leaves the offer noted in config.toml, and so
    does this. pi and opencode need nothing.
    """
    if rig.cli == "codex":
        with (rig.home / ".codex" / "config.toml").open("a") as f:
            f.write(f'\n[notice.model_migrations]\n"{CODEX_MODEL}" = "gpt-6-sol"\n')
        return
    if rig.cli != "claude":
        return
    key = rig.ctx.env["ANTHROPIC_API_KEY"]
    state = {
        "hasCompletedOnboarding": True,
        "theme": "dark",
        # claude remembers an approved key by its last 20 characters
        "customApiKeyResponses": {"approved": [key[-20:]], "rejected": []},
        "projects": {str(rig.ctx.paths.data): {"hasTrustDialogAccepted": True}},
    }
    (rig.home / ".claude.json").write_text(json.dumps(state, indent=2) + "\n")
    settings = rig.home / ".claude" / "settings.json"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(json.dumps({"skipDangerousModePermissionPrompt": True}, indent=2) + "\n")


def git(repo: Path, *args: str) -> str:
    """git in `repo`; its stdout (a failure fails the test)."""
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout


def git_repo(at: Path, name: str, text: str) -> Path:
    """A fresh repository at `at` on `main` with one commit of `name`; its committer is the
    human a worker's commits also use."""
    at.mkdir()
    git(at, "init", "-q", "-b", "main")
    git(at, "config", "user.email", "human@example.test")
    git(at, "config", "user.name", "A Human")
    (at / name).write_text(text)
    git(at, "add", name)
    git(at, "commit", "-qm", "start")
    return at
