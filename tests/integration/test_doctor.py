"""`looop doctor` on real files, a real PATH and real sockets: one line per check with its
fix, `--json`, exit 1 on a failing check (0 on warnings alone), and `init` ending with its
summary."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from looop.home.paths import Paths
from looop.remote.hosts import hosts_dir
from looop.web.auth import runtime_path
from tests.helpers import Cli

pytestmark = pytest.mark.timeout(60)


def _tools(tmp_path: Path, *names: str) -> Path:
    """A PATH folder with executables of these names (a fake runner CLI)."""
    folder = tmp_path / "tools"
    folder.mkdir(exist_ok=True)
    for name in names:
        (folder / name).write_text("#!/bin/sh\nexit 0\n")
        (folder / name).chmod(0o755)
    return folder


def _checks(out: str) -> dict[str, dict[str, object]]:
    rows = json.loads(out)
    assert all(set(r) == {"name", "ok", "level", "detail", "fix"} for r in rows)
    return {str(r["name"]): r for r in rows}


def _init_custom(cli: Cli, tools: Path, *extra: str) -> None:
    code, _, err = cli(
        "init", "--runner", "custom", "--tick-command", "mytick -p",
        "--worker-command", "myw {{prompt_file}}", "--no-sandbox", "--force", *extra,
        env_extra={"PATH": str(tools)},
    )  # fmt: skip
    assert code == 0, err
    cfg = json.loads((cli.data / "config.json").read_text())
    cfg["max_daily_usd"] = 10  # a budget the user set: it holds for a runner with no cost
    (cli.data / "config.json").write_text(json.dumps(cfg))


def test_up_refuses_a_worker_cli_not_on_path_as_doctor_does(cli: Cli, tmp_path: Path) -> None:
    tools = _tools(tmp_path, "mytick")
    _init_custom(cli, tools)
    try:
        code, _, err = cli("up", env_extra={"PATH": str(tools)})
    finally:
        cli("down", env_extra={"PATH": str(tools)})
    assert code == 1 and err.count("\n") == 1
    assert "needs `myw`, which is not on PATH" in err


def test_init_force_drops_the_previous_runners_failure(cli: Cli, tmp_path: Path) -> None:
    tools = _tools(tmp_path, "mytick", "myw")
    _init_custom(cli, tools)
    fail = {"run_id": "r1", "code": "exit", "error": "`claude` not found", "fails": 3, "ts": 1}
    (cli.data / ".last-failure.json").write_text(json.dumps(fail))
    (cli.data / ".tick-backoff").write_text(json.dumps({"fails": 3, "until": 9e9}))
    _init_custom(cli, tools)
    _, out, _ = cli("status", env_extra={"PATH": str(tools)})
    assert "`claude` not found" not in out, out
    assert not (cli.data / ".tick-backoff").exists()


def test_runner_on_path_and_budget(cli: Cli, data: Path, tmp_path: Path) -> None:
    tools = _tools(tmp_path, "mytick")
    _init_custom(cli, tools)
    code, out, _ = cli("doctor", env_extra={"PATH": str(tools)})
    assert code == 1
    runner = next(ln for ln in out.splitlines() if ln.startswith("✗ runner:"))
    assert "`myw` not on PATH" in runner and "install it" in runner  # the fix on the same line
    budget = next(ln for ln in out.splitlines() if ln.startswith("✗ budget:"))
    assert "after 3 decides" in budget and "runners.custom.cost" in budget
    # the worker's CLI appears, the budget goes: every check passes or only warns
    _tools(tmp_path, "myw")
    cfg = json.loads((data / "config.json").read_text())
    cfg["max_daily_usd"] = 0
    (data / "config.json").write_text(json.dumps(cfg))
    code, out, _ = cli("doctor", "--json", env_extra={"PATH": str(tools)})
    assert code == 0, out
    got = _checks(out)
    assert got["runner"]["level"] == "ok" and got["budget"]["level"] == "ok"
    assert list(got)[:3] == ["config", "runner", "data dir"]


def test_a_misspelt_key_fails_with_its_nearest_key(cli: Cli, data: Path, tmp_path: Path) -> None:
    tools = _tools(tmp_path, "mytick", "myw")
    _init_custom(cli, tools)
    cfg = json.loads((data / "config.json").read_text())
    cfg["max_daly_usd"] = 1
    (data / "config.json").write_text(json.dumps(cfg))
    code, out, err = cli("doctor", env_extra={"PATH": str(tools)})
    assert code == 1
    line = out.splitlines()[0]
    assert line.startswith("✗ config:") and "did you mean 'max_daily_usd'" in line
    assert "max_daly_usd" not in err  # said once, in its check, not again as a warning


def test_data_dir_under_a_file_fails(cli: Cli, tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("")
    code, out, _ = cli("doctor", "--json", env_extra={"LOOOP_DATA_DIR": str(blocker / "home")})
    assert code == 1
    got = _checks(out)
    assert got["data dir"]["ok"] is False and "not a directory" in str(got["data dir"]["detail"])


def test_endpoint_is_dialled(cli: Cli, tmp_path: Path) -> None:
    code, _, err = cli("init", "--runner", "claude", "--no-sandbox")
    assert code == 0, err
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]
        code, out, _ = cli(
            "doctor", "--json", env_extra={"ANTHROPIC_BASE_URL": f"http://127.0.0.1:{port}"}
        )
        assert _checks(out)["endpoint"]["level"] == "ok", out
    # the listener is closed: the same port now refuses
    code, out, _ = cli(
        "doctor", "--json", env_extra={"ANTHROPIC_BASE_URL": f"http://127.0.0.1:{port}"}
    )
    ep = _checks(out)["endpoint"]
    assert code == 1 and ep["ok"] is False and "ANTHROPIC_BASE_URL" in str(ep["fix"])


def test_init_ends_with_the_doctor_summary(cli: Cli, tmp_path: Path) -> None:
    tools = _tools(tmp_path, "mytick", "myw")
    code, out, _ = cli(
        "init", "--runner", "custom", "--tick-command", "mytick", "--worker-command",
        "myw {{prompt_file}}", "--no-sandbox", env_extra={"PATH": str(tools)},
    )  # fmt: skip
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("wrote ")  # init's own output stays first
    assert lines[-2].startswith("! budget:")  # only what needs a look: the default budget is
    assert "its decides are not counted" in lines[-2]  # a runner that reports no cost
    assert lines[-1].startswith("doctor: ") and "1 warning" in lines[-1]
    assert not any(ln.startswith("✓") for ln in lines)


def test_exit_code_from_a_real_process(tmp_path: Path, cli: Cli, data: Path) -> None:
    tools = _tools(tmp_path, "mytick", "myw")
    _init_custom(cli, tools, "--tick-command", "mytick")
    env = cli.child_env(PATH=f"{tools}:{Path(sys.executable).parent}")
    run = subprocess.run(
        [sys.executable, "-m", "looop", "doctor"], env=env, capture_output=True, text=True,
        timeout=30,
    )  # fmt: skip
    assert run.returncode == 1 and "✗ budget:" in run.stdout, run.stdout + run.stderr
    cfg = json.loads((data / "config.json").read_text())
    cfg["max_daily_usd"] = 0
    (data / "config.json").write_text(json.dumps(cfg))
    run = subprocess.run(
        [sys.executable, "-m", "looop", "doctor"], env=env, capture_output=True, text=True,
        timeout=30,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "✗" not in run.stdout


def test_web_face_url_from_the_runtime_file(cli: Cli, data: Path) -> None:
    code, _, err = cli("init", "--runner", "claude", "--no-sandbox")
    assert code == 0, err
    code, out, _ = cli("doctor", "--json")
    assert _checks(out)["web"]["level"] == "skip"
    # a live process whose argv says `web` (as web.daemon checks a reused pid) and its record
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()", "web"],
                            stdin=subprocess.PIPE)  # fmt: skip
    try:
        cmdline = Path(f"/proc/{proc.pid}/cmdline")
        for _ in range(200):  # its argv is the new program's once exec has run
            if b"web" in cmdline.read_bytes().split(b"\0"):
                break
            time.sleep(0.05)  # nothing to await: exec gives no event to a parent
        rec = {"pid": proc.pid, "url": "http://127.0.0.1:9", "port": 9}
        where = runtime_path(Paths.at(data))
        where.parent.mkdir(parents=True, exist_ok=True)
        where.write_text(json.dumps(rec))
        code, out, _ = cli("doctor", "--json")
        web = _checks(out)["web"]
        assert web["level"] == "ok" and "http://127.0.0.1:9" in str(web["detail"])
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_sandbox_on_without_srt_fails_naming_the_parts(cli: Cli, tmp_path: Path) -> None:
    tools = _tools(tmp_path, "claude")
    code, _, err = cli("init", "--runner", "claude", "--sandbox", env_extra={"PATH": str(tools)})
    assert code == 0, err
    code, out, _ = cli("doctor", env_extra={"PATH": str(tools)})
    line = next(ln for ln in out.splitlines() if "sandbox:" in ln)
    assert code == 1 and line.startswith("✗") and "srt" in line and "bwrap" in line
    assert "--no-sandbox" in line  # the fix, on the same line


def test_hosts_are_named_when_registered(cli: Cli, data: Path) -> None:
    code, _, err = cli("init", "--runner", "claude", "--no-sandbox")
    assert code == 0, err
    code, out, _ = cli("doctor", "--json")
    assert "hosts" not in _checks(out)  # no hosts/: no line at all
    hosts_dir(data).mkdir(parents=True)
    code, out, _ = cli("doctor", "--json")
    assert _checks(out)["hosts"]["detail"] == "none registered"
    code, _, err = cli("host", "add", "box", "ssh://me@10.0.0.9")
    assert code == 0, err
    code, out, _ = cli("doctor")
    line = next(ln for ln in out.splitlines() if ln.startswith("- hosts:"))
    assert "1 registered (box)" in line and "looop host check" in line
