"""The console entry (looop.verbs.console): a light verb's fast exit keeps its output and exit code,
and every other verb answers as through the plain entry."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from looop.verbs import console as boot
from tests.helpers import outside_env

pytestmark = pytest.mark.process  # real processes: not make check's tier


def test_the_entry_loads_nothing_but_builtins_at_first() -> None:
    """boot runs before anything else in every command: its own imports are the
    interpreter's built-in and frozen modules only."""
    import ast

    tree = ast.parse(Path(boot.__file__).read_text())
    top = {
        (n.module if isinstance(n, ast.ImportFrom) else a.name).split(".")[0]
        for n in tree.body
        if isinstance(n, ast.Import | ast.ImportFrom)
        for a in n.names
    }
    top.discard("__future__")
    fresh = subprocess.run(
        [sys.executable, "-c", "import sys; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout.split()
    assert top <= set(sys.builtin_module_names) | set(fresh)


# The console entry against the plain one: the same output and exit code for light verbs
# (served fast, ended without teardown) and for others, success and failure alike.
CASES = [
    ["version"],
    ["status"],
    ["status", "--json"],
    ["ls"],
    ["claim", "job-1", "--session", "w1"],
    ["told", "w1"],
    ["tell", "nobody", "hi"],
    ["cost", "report", "session", "w1", "claude", "-3"],  # a bad amount
    ["ls", "--bogus"],  # click's error, not a light verb
    ["help"],
]


def _run(entry: str, args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    code = f"import sys\nfrom {entry} import main\nsys.argv[1:] = {args!r}\nmain()\n"
    p = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    return p.returncode, p.stdout, p.stderr


@pytest.mark.timeout(240)
def test_the_console_entry_answers_as_the_plain_entry_does(tmp_path: Path) -> None:
    env = outside_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as a user's runs: with bytecode
    env.update(LOOOP_DATA_DIR=str(tmp_path / "data"), HOME=str(tmp_path), TZ="UTC")
    cache = Path(boot.__file__).parents[1] / "__pycache__"
    before = {p.name for p in cache.iterdir()} if cache.is_dir() else set()
    for args in CASES:
        plain = _run("looop.verbs.table", args, env)
        ours = _run("looop.verbs.console", args, env)
        if args[0] == "claim" and args[-1] == "w1":
            assert plain[0] == 0 and ours[0] == 0  # the same holder claims again
        elif args[0] != "status":
            assert ours == plain, args
        else:  # status names the time it was read
            assert ours[0] == plain[0] == 0
            assert _no_time(ours[1], args) == _no_time(plain[1], args)
        if args[0] in ("tell", "cost"):  # the failures fail through both entries
            assert ours[0] == 1 and ours[2].startswith("looop: "), ours
    # the entry writes nothing into the install beside Python's own .pyc files
    after = {p.name for p in cache.iterdir()} if cache.is_dir() else set()
    assert {n for n in after - before if not n.endswith(".pyc")} == set()


def _no_time(out: str, args: list[str]) -> object:
    """Status less the moment it was read (it names that time)."""
    if "--json" in args:
        got = json.loads(out)
        got.pop("now")
        return got
    return [line for line in out.splitlines() if "as of" not in line]


@pytest.mark.timeout(60)
def test_a_light_verb_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    env = outside_env()
    env.update(LOOOP_DATA_DIR=str(tmp_path / "data"), HOME=str(tmp_path))
    r, w = os.pipe()
    os.close(r)
    try:
        p = subprocess.run(
            [sys.executable, "-m", "looop", "status"],
            env=env,
            stdout=w,
            stderr=subprocess.PIPE,
            text=True,
            timeout=30,
        )
    finally:
        os.close(w)
    assert p.returncode == 0
    assert p.stderr == ""


@pytest.mark.timeout(240)
def test_a_live_sessions_screen_and_input_answer_as_through_the_plain_entry(
    tmp_path: Path,
) -> None:
    """shot, send and key on a live session end light (their socket closed, their output
    flushed before the fast exit) and say what the plain entry says."""
    from looop.sessions.client import kill
    from looop.sessions.spawner import spawn

    data = tmp_path / "data"
    data.mkdir()
    env = outside_env()
    env.update(LOOOP_DATA_DIR=str(data), HOME=str(tmp_path))
    # no echo, input read into /dev/null: a send changes neither the screen nor the log
    quiet = "stty -echo; echo ready; exec cat >/dev/null"
    spawn(data, "w1", ["sh", "-c", quiet], cwd=data, env=env)
    try:
        log = data / "sessions" / "w1" / "output.log"
        deadline = time.monotonic() + 30
        while not (log.exists() and b"ready" in log.read_bytes()):
            assert time.monotonic() < deadline, "the session never printed"
            time.sleep(0.02)
        for args in (
            ["shot", "w1"],
            ["shot", "w1", "--json"],
            ["send", "--json", "w1", "hi"],
            ["key", "w1", "Tab", "--json"],
        ):
            plain = _run("looop.verbs.table", args, env)
            ours = _run("looop.verbs.console", args, env)
            assert ours == plain, args
            assert ours[0] == 0 and ours[1].strip(), args
    finally:
        kill(data, "w1")


def _run_watching_exit(args: list[str], env: dict[str, str]) -> tuple[int, str, str, bool]:
    """The console entry run on `args`, and whether it ended by the fast exit (os._exit) rather
    than the interpreter's teardown."""
    code = (
        "import os, sys\n"
        "real = os._exit\n"
        "def fast(status):\n"
        "    sys.stderr.write('<fast exit>')\n"
        "    sys.stderr.flush()\n"
        "    real(status)\n"
        "os._exit = fast\n"
        "from looop.verbs.console import main\n"
        f"sys.argv[1:] = {args!r}\n"
        "main()\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    err = p.stderr.replace("<fast exit>", "")
    return p.returncode, p.stdout, err, err != p.stderr


@pytest.mark.timeout(240)
def test_a_beat_and_a_worker_start_end_without_the_teardown_and_say_what_the_plain_entry_says(
    tmp_path: Path,
) -> None:
    """`tick` and `worker start` load ~300 modules: the console entry ends them by the fast
    exit (their teardown cost more than a whole status), with the output, exit code and
    files of the plain entry; a start click serves (--help) still ends through the teardown."""
    from looop.home.clock import SystemClock
    from looop.sessions.client import kill, wait

    noop = 'printf \'%s\' \'{"action":"noop","journal":"quiet"}\' > .decision.json'
    homes = {}
    for entry in ("plain", "ours"):
        data = tmp_path / entry
        data.mkdir()
        (data / "config.json").write_text(json.dumps({"tick_command": noop}))
        homes[entry] = (data, outside_env(LOOOP_DATA_DIR=str(data), HOME=str(tmp_path)))
    start = ["worker", "start", "w1", "--no-sandbox", "--command", "tail -f {{prompt_file}}", "hi"]
    try:
        bad = ["worker", "start", "w2", "--no-sandbox", "--command", "true", "hi"]
        codes = []
        for args in (["tick"], start, start, bad):  # the second start and the bad one: refused
            plain = _untimed(_run("looop.verbs.table", args, homes["plain"][1]))
            *ours, fast = _run_watching_exit(args, homes["ours"][1])
            assert _untimed(tuple(ours)) == plain, args
            assert fast, f"{args}: ended through the interpreter's teardown"
            codes.append(plain[0])
        assert codes == [0, 0, 1, 1]
        wanted = {"ours": set(), "plain": set()}
        for entry, (data, _) in homes.items():
            wanted[entry] = {p.name for p in (data / "sessions").iterdir()}
        assert wanted["ours"] == wanted["plain"] == {"w1"}
        *_, fast = _run_watching_exit(["worker", "start", "--help"], homes["ours"][1])
        assert not fast  # click served it: its teardown is owed
    finally:
        for data, _ in homes.values():
            if (data / "sessions" / "w1").is_dir():
                kill(data, "w1")
                wait(data, "w1", 30, SystemClock())


def _untimed(run: tuple[int, str, str]) -> tuple[int, str, str]:
    """A run's output less the clock times a beat's lines start with and the durations."""
    code, out, err = run
    err = re.sub(r"(?m)^\[\d\d:\d\d:\d\d\] ", "", err)
    return code, out, re.sub(r"\(\d+\.\ds\)", "(T)", err)
