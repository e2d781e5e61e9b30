"""A sandboxed worker on an SSH host, the rules that need no host: a decision cannot loosen the
config's sandbox there either; the host's policy adds only its drop box and hides every
satellite; the refusal names the host and the fix; a resume record's env carries only what
a satellite adds (never a variable that changes what runs)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from looop.cli.hosts import _sandbox_line
from looop.core.context import Ctx
from looop.home.errors import LooopError
from looop.home.paths import Paths
from looop.home.sandboxpolicy import OFF, SandboxPolicy
from looop.remote import hosts as reg
from looop.remote.ssh import boxed
from looop.workers import resume
from looop.workers.errors import WorkerError
from looop.workers.launch import start_worker
from looop.workers.started import StartRequest


def test_a_decision_cannot_start_a_worker_unsandboxed_on_a_host(ctx: Ctx) -> None:
    cfg = {"default": "sh", "runners": {"sh": {"worker": "sh {{prompt_file}}"}}, "sandbox": "on"}
    ctx.paths.config.write_text(json.dumps(cfg))
    reg.add(ctx.paths.data, "h1", "ssh://u@h1.example", 0)
    with pytest.raises(WorkerError, match="a decision cannot loosen"):
        start_worker(
            ctx,
            ctx.knobs(),
            StartRequest(
                "w1", "go", command="true # {{prompt_file}}", sandbox=OFF, decided=True, host="h1"
            ),
        )
    assert reg.record(ctx.paths.data, "w1") is None  # refused before anything crossed


def test_the_hosts_policy_adds_its_drop_box_and_hides_every_satellite(tmp_path: Path) -> None:
    root = tmp_path / ".local/share/looop/satellite/0123456789abcdef"
    mine = SandboxPolicy(True, write=("~/out",), deny_read=("~/x",), domains=("a.example",))
    got = boxed.host_policy(mine, root, "w1", str(tmp_path))
    assert got.write == ("~/out", str(Paths.at(root).rooms / "w1" / "callhome"))
    assert got.deny_read == ("~/x", str(tmp_path / ".local/share/looop/satellite"))
    assert got.domains == ("a.example",) and got.on


def test_a_host_without_srt_is_refused_in_one_line_naming_the_host_and_the_fix(
    tmp_path: Path,
) -> None:
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path)}  # nothing on PATH
    with pytest.raises(LooopError) as e:
        boxed.require(env, "w1", "gpu1")
    line = str(e.value)
    assert "\n" not in line and "host gpu1" in line and "srt" in line
    assert "`looop host install gpu1`" in line and "--no-sandbox" in line
    # srt brought by `host install` is found before PATH's
    cli = tmp_path / boxed.SRT_CLI
    cli.parent.mkdir(parents=True)
    cli.write_text("#!/bin/sh\n")
    os.chmod(cli, 0o755)
    assert boxed.srt_env(env)["LOOOP_SRT"] == str(cli)
    assert "LOOOP_SRT" not in boxed.srt_env({**env, "HOME": str(tmp_path / "nope")})


def test_host_check_says_what_is_missing_and_how_to_fix_it() -> None:
    assert _sandbox_line("h1", [], True).startswith("sandbox: ready")
    line = _sandbox_line("h1", ["srt (npm …)", "bwrap (apt-get install bubblewrap)"], True)
    assert "missing srt (`looop host install h1`" in line
    assert "bwrap (apt-get install bubblewrap)" in line
    assert "the config's workers run sandboxed" in line and "--no-sandbox" in line


def _record(ctx: Ctx, env: object) -> None:
    rec = {
        "v": 1,
        "id": "w1",
        "runner": "claude",
        "resume": "claude --resume {{session_id}}",
        "conversation": "abc-1",
        "cwd": str(ctx.paths.data),
        "sandbox": "on",
        "policy": "never",
        "started": 1.0,
        "find": None,
        "home": None,
        "repo": False,
        "env": env,
    }
    resume.record_path(ctx, "w1").parent.mkdir(parents=True, exist_ok=True)
    resume.record_path(ctx, "w1").write_text(json.dumps(rec))


def test_a_resume_record_carries_only_a_satellites_env(ctx: Ctx) -> None:
    _record(ctx, {"PATH": "/shim:/usr/bin", "LOOOP_CALLHOME_DIR": "/x/callhome"})
    rec = resume.read_record(ctx, "w1")
    assert rec is not None and rec.env == {
        "PATH": "/shim:/usr/bin",
        "LOOOP_CALLHOME_DIR": "/x/callhome",
    }
    for bad in ({"LD_PRELOAD": "/evil.so"}, {"LOOOP_BIN": 3}, ["PATH"]):
        _record(ctx, bad)
        with pytest.raises(WorkerError, match="field 'env'"):
            resume.read_record(ctx, "w1")
