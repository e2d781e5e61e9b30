"""Session verbs as a user types them: drive a real bash through looop's CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from looop.core.context import Ctx
from looop.workers.launch import start_worker
from looop.workers.started import StartRequest
from tests.helpers import clean_env, stop_sessions, wire

pytestmark = pytest.mark.timeout(120)


def _looop(ctx: Ctx, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "looop", *args],
        env=clean_env(ctx.paths.data.parent, ctx.paths.data),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def bash_worker(ctx: Ctx) -> Ctx:
    wire(ctx, [])
    start_worker(
        ctx,
        ctx.knobs(),
        StartRequest("sh1", "x", command="PS1='$ ' bash --norc -i # {{prompt_file}}"),
    )
    yield ctx
    stop_sessions(ctx.paths.data)


def test_send_expect_key_shot_log_wait(bash_worker: Ctx) -> None:
    c = bash_worker
    r = _looop(c, "send", "--json", "sh1", "echo", "$((6*7))")
    assert r.returncode == 0, r.stderr
    offset = json.loads(r.stdout)["offset"]
    r = _looop(c, "expect", "sh1", r"^42\r?$", "--since", str(offset), "--timeout", "20s")
    assert r.returncode == 0, r.stdout + r.stderr
    # a line starting with a dash is text, not an option, after --
    r = _looop(c, "send", "sh1", "--", "-n is not a flag here")
    assert r.returncode == 0
    r = _looop(c, "expect", "sh1", "--timeout", "20s", "--", "-n: command not found")
    assert r.returncode == 0, r.stdout
    r = _looop(c, "shot", "sh1")
    assert r.returncode == 0 and "42" in r.stdout
    shot = json.loads(_looop(c, "shot", "sh1", "--json").stdout)
    assert shot["cols"] == 120 and len(shot["screen_hash"]) == 16
    r = _looop(c, "log", "sh1", "--grep", "^42", "-n", "1")
    assert r.stdout.strip() == "42"
    r = _looop(c, "expect", "sh1", "never-printed", "--timeout", "1s", "--from-now")
    assert r.returncode == 124
    r = _looop(c, "key", "sh1", "NoSuchKey")
    assert r.returncode == 1 and "NoSuchKey" in r.stderr and r.stderr.count("\n") == 1
    r = _looop(c, "send", "sh1", "exit 3")
    r = _looop(c, "wait", "sh1", "--timeout", "20s")
    assert r.returncode == 3
    r = _looop(c, "send", "sh1", "late")
    assert r.returncode == 1 and "already finished" in r.stderr
    r = _looop(c, "status", "--json")
    workers = json.loads(r.stdout)["workers"]
    assert workers == [
        {
            "id": "sh1",
            "state": "exited",
            "label": "exit:3",
            "alive": False,
            "exit_code": 3,
            "flagged": False,
            "note": None,
            "sandboxed": False,
        }
    ]


def test_flag_resize_restart_and_bad_ids(bash_worker: Ctx) -> None:
    c = bash_worker
    assert _looop(c, "flag", "sh1", "need", "a", "human").returncode == 0
    r = _looop(c, "ls", "--json")
    rows = {x["id"]: x for x in json.loads(r.stdout)}
    assert rows["sh1"]["note"] == "need a human"
    assert "⚑ need a human" in _looop(c, "status").stdout
    assert _looop(c, "unflag", "sh1").returncode == 0
    assert _looop(c, "resize", "sh1", "100x30").returncode == 0
    _looop(c, "send", "sh1", "stty size")
    assert _looop(c, "expect", "sh1", "^30 100", "--timeout", "20s").returncode == 0
    assert _looop(c, "restart", "sh1").returncode == 0
    assert _looop(c, "wait-idle", "sh1", "--settle", "300ms", "--timeout", "20s").returncode == 0
    for bad in ("../x", "ghost", "a b", ""):
        r = _looop(c, "shot", bad)
        assert r.returncode == 1 and r.stderr.count("\n") == 1, (bad, r.stderr)
    r = _looop(c, "resize", "sh1", "wide")
    assert r.returncode == 1 and "wide" in r.stderr
    r = _looop(c, "expect", "sh1", "(unclosed")
    assert r.returncode == 2 and "regex" in r.stderr


def test_worker_start_and_kill_verbs_are_journaled(ctx: Ctx, tmp_path: Path) -> None:
    wire(ctx, [], worker="sleep 300; : {{prompt_file}}")
    r = _looop(ctx, "worker", "start", "w9", "do the thing", "--journal", "started w9 by hand")
    assert r.returncode == 0 and "looop shot w9" in r.stdout, r.stderr
    r = _looop(ctx, "worker", "start", "w9", "again")
    assert r.returncode == 1 and "already running" in r.stderr
    r = _looop(ctx, "kill", "w9", "--reason", "done")
    assert r.returncode == 0
    journal = ctx.paths.journal.read_text()
    assert "started w9 by hand" in journal and "kill" in journal
    assert _looop(ctx, "prune").stdout.startswith("pruned 1")
