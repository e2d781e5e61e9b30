"""The first hour of a new user, as they would notice it: real `looop` processes (and PTYs
where a terminal is the point): status that tells the truth, a cost that says "unknown", a dry
run that fails loudly, colour only on a terminal, a manual that pages, `looop web` twice, and
`log` that replays N lines of a TUI's redraws and no blank line after a shell's command."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from tests.helpers import clean_env, kill_sessions, until, wait_until

pytestmark = pytest.mark.timeout(90)

LOOOP = [sys.executable, "-m", "looop"]
# A custom decider in one shell line: reads the prompt, writes the one move, reports no cost.
NOOP_TICK = (
    'cat > /dev/null; printf \'%s\' \'{"action":"noop","reason":"all quiet"}\' '
    '> "$LOOOP_DATA_DIR/.decision.json"'
)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def env(home: Path, data: Path) -> dict[str, str]:
    return clean_env(home, data)


def looop(
    env: dict[str, str], *args: str, timeout: float = 60, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LOOOP, *args],
        env={**env, **extra},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def init_custom(env: dict[str, str], data: Path) -> None:
    got = looop(
        env, "init", "--runner", "custom", "--tick-command", NOOP_TICK,
        "--worker-command", "cat {{prompt_file}}", "--no-sandbox",
    )  # fmt: skip
    assert got.returncode == 0, got.stderr
    assert (data / "config.json").is_file()


def edit_config(data: Path, *drop: str, **keys: object) -> None:
    cfg = json.loads((data / "config.json").read_text())
    cfg.update(keys)
    for key in drop:
        del cfg[key]
    (data / "config.json").write_text(json.dumps(cfg))


def test_status_says_a_misspelt_config_key_and_exits_1(env: dict[str, str], data: Path) -> None:
    init_custom(env, data)
    ok = looop(env, "status")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "config:    ✗" not in ok.stdout
    edit_config(data, max_dayly_usd=3)
    bad = looop(env, "status")
    assert bad.returncode == 1
    line = next(ln for ln in bad.stdout.splitlines() if ln.startswith("config:"))
    assert "'max_dayly_usd'" in line and "did you mean 'max_daily_usd'" in line
    assert "PULSE" in bad.stdout and "WORK" in bad.stdout  # the rest still printed
    as_json = looop(env, "status", "--json")
    assert as_json.returncode == 1
    assert "max_dayly_usd" in json.loads(as_json.stdout)["config_warnings"][0]
    # a value the pulse cannot run with: also a failing status
    edit_config(data, "max_dayly_usd", interval="often")
    worse = looop(env, "status")
    assert worse.returncode == 1
    assert "'interval' must be" in worse.stdout


def test_dry_run_without_a_prompt_exits_non_zero(env: dict[str, str], data: Path) -> None:
    init_custom(env, data)
    good = looop(env, "tick", "--dry-run")
    assert good.returncode == 0, good.stderr
    assert "PLAYBOOK" in good.stdout
    edit_config(data, interval="often")
    bad = looop(env, "tick", "--dry-run")
    assert bad.returncode == 1
    assert bad.stdout == ""
    assert "no prompt" in bad.stderr and "'interval'" in bad.stderr


def test_cost_counts_decides_whose_runner_reported_no_cost(env: dict[str, str], data: Path) -> None:
    init_custom(env, data)
    empty = looop(env, "cost")
    assert empty.returncode == 0 and "no cost recorded yet" in empty.stdout
    for _ in range(3):
        beat = looop(env, "tick", "--force")
        assert beat.returncode == 0, beat.stdout + beat.stderr
    got = looop(env, "cost")
    assert got.returncode == 0
    assert "3 calls, cost unknown" in got.stdout
    assert "$0 " not in got.stdout and "(0 calls)" not in got.stdout
    assert json.loads(looop(env, "cost", "--json").stdout)["uncosted_calls"] == 3
    # a worker's reported spend is a known cost; the decides stay unknown beside it
    assert looop(env, "cost", "report", "worker", "w1", "custom", "0.25").returncode == 0
    mixed = looop(env, "cost")
    assert "$0.25  (1 call; 3 more, cost unknown)" in mixed.stdout


def _pty(env: dict[str, str], *args: str, **extra: str) -> str:
    child = pexpect.spawn(
        LOOOP[0], [*LOOOP[1:], *args], env={**env, **extra}, encoding="utf-8", timeout=30
    )
    child.expect(pexpect.EOF)
    child.close()
    return str(child.before)


def test_status_and_ls_colour_only_on_a_terminal(env: dict[str, str], data: Path) -> None:
    init_custom(env, data)
    edit_config(data, bogus=1)
    tty_status = _pty(env, "status", TERM="xterm")
    assert "\x1b[33mstopped\x1b[0m" in tty_status  # the pulse's health
    assert "\x1b[31m✗\x1b[0m" in tty_status  # the config's error
    assert "\x1b[" not in _pty(env, "status", TERM="xterm", NO_COLOR="1")
    assert "\x1b[" not in looop(env, "status").stdout  # piped
    edit_config(data, "bogus")
    tty_ls = _pty(env, "ls", TERM="xterm")
    assert "\x1b[31mdown\x1b[0m" in tty_ls
    assert "\x1b[" not in _pty(env, "ls", TERM="xterm", NO_COLOR="1")
    assert "\x1b[" not in looop(env, "ls").stdout


def test_help_pages_on_a_terminal_and_prints_when_piped(env: dict[str, str], home: Path) -> None:
    seen = home / "paged.txt"
    pager = home / "pager.sh"
    pager.write_text(f"#!/bin/sh\ncat > {shlex.quote(str(seen))}\n")
    pager.chmod(0o755)
    _pty(env, "help", PAGER=str(pager), TERM="xterm")
    assert "PATHS" in seen.read_text()  # the whole manual went through the pager
    seen.unlink()
    piped = looop(env, "help", PAGER=str(pager))
    assert piped.returncode == 0 and "PATHS" in piped.stdout
    assert not seen.exists()


@pytest.mark.timeout(120)
def test_web_twice_prints_the_running_ones_link(env: dict[str, str], data: Path) -> None:
    init_custom(env, data)
    first = subprocess.Popen(
        [*LOOOP, "web", "--port", "0"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert first.stdout is not None
        url = first.stdout.readline().decode().strip()  # it prints its link when it listens
        assert url.startswith("http://127.0.0.1:") and "token=" in url
        status = looop(env, "status")
        base = url.split("?")[0]
        assert f"web:       {base}" in status.stdout
        assert "token=" not in status.stdout  # the token stays out of a pasted status
        again = looop(env, "web")
        assert again.returncode == 0, again.stderr
        assert again.stdout.strip() == url
        assert f"already serving this data dir (pid {first.pid})" in again.stderr
        assert first.poll() is None  # the first one still serves
    finally:
        first.terminate()
        first.wait(timeout=20)
    wait_until(lambda: "web:" not in looop(env, "status").stdout, 20, "status drops the web")


@pytest.fixture
def sessions_dir(data: Path) -> Iterator[Path]:
    yield data
    kill_sessions(data)


def test_log_follow_tail_counts_a_tuis_redraws_as_lines(
    env: dict[str, str], data: Path, sessions_dir: Path
) -> None:
    init_custom(env, data)
    redraw = (
        "printf 'a\\r\\nb\\r\\n'; for i in $(seq 1 40); do printf '\\033[2K\\rstep %s' $i; done"
    )
    started = looop(
        env,
        "worker",
        "start",
        "tui",
        "x",
        "--command",
        f"{redraw}; sleep 60 # {{{{prompt_file}}}}",
        "--no-sandbox",
    )
    assert started.returncode == 0, started.stderr
    wait_until(lambda: "step 40" in looop(env, "log", "tui").stdout, 20, "the redraws logged")
    child = pexpect.spawn(
        LOOOP[0], [*LOOOP[1:], "log", "-f", "-n", "2", "tui"], env=env, encoding="utf-8"
    )
    try:
        child.expect_exact("step 40", timeout=20)
        shown = str(child.before) + "step 40"
        assert shown.split() == ["step", "39", "step", "40"], shown  # two lines, then follows
        assert child.isalive()
    finally:
        child.terminate(force=True)
    assert looop(env, "log", "-n", "2", "tui").stdout == "step 39\nstep 40\n"


def test_log_shows_no_blank_line_after_a_shells_command(
    env: dict[str, str], data: Path, sessions_dir: Path
) -> None:
    init_custom(env, data)
    shell = "PS1='$ ' exec bash --norc --noprofile -i"
    started = looop(
        env,
        "worker",
        "start",
        "sh",
        "x",
        "--command",
        shell + " # {{prompt_file}}",
        "--no-sandbox",
    )
    assert started.returncode == 0, started.stderr
    wait_until(lambda: "$" in looop(env, "log", "sh").stdout, 20, "the prompt")
    assert looop(env, "send", "sh", "echo hi-$((6*7))").returncode == 0
    assert until(lambda: "hi-42\n$" in looop(env, "log", "sh").stdout, 20)
    text = looop(env, "log", "sh").stdout
    assert "$ echo hi-$((6*7))\nhi-42\n" in text, repr(text)
    assert "\n\n" not in text
    assert os.path.isdir(data / "sessions" / "sh")


def test_demo_try_next_works_in_the_users_own_shell(env: dict[str, str], home: Path) -> None:
    """`make demo` runs .venv/bin/looop, which the user's PATH does not name: the lines it
    suggests must run as printed, and the last one removes the throwaway dir."""
    user = {k: v for k, v in env.items() if k != "LOOOP_DATA_DIR"}
    user["PATH"] = "/usr/bin:/bin"  # no looop on it
    demo = looop(user, "demo", "--fast")
    assert demo.returncode == 0, demo.stdout + demo.stderr
    tail = demo.stdout.split("try next (in this shell):\n", 1)[1].splitlines()
    lines = [ln.split("  # ")[0].strip() for ln in tail if ln.startswith("  ") and "#" in ln]
    assert lines[0].startswith("export LOOOP_DATA_DIR=")
    root = Path(shlex.split(lines[0].split("=", 1)[1])[0])
    assert root.is_dir()
    shell = subprocess.run(
        ["bash", "--norc", "--noprofile", "-e", "-c", "\n".join(lines[:3])],
        env={**user, "HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shell.returncode == 0, shell.stderr
    assert "PULSE" in shell.stdout and "inbox empty again" in shell.stdout
    cleanup = lines[-1]
    assert cleanup.startswith("rm -rf ")
    subprocess.run(["bash", "-c", cleanup], env=user, timeout=30, check=True)
    assert not root.exists()
