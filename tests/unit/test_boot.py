"""The console entry (looop.verbs.console): a contract verb's fast exit keeps its output and exit
code, and every verb answers as through the plain entry (`run`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from looop.verbs import console as boot
from tests.helpers import outside_env

pytestmark = pytest.mark.process  # real processes: not make check's tier


def test_the_entry_loads_nothing_but_builtins_at_first() -> None:
    """boot runs before anything else in every command: its own imports and its failure
    words' are the interpreter's built-in and frozen modules, `typing` (the ground floor's)
    and the light home's."""
    import ast

    from looop.verbs import failure

    body = [n for f in (boot, failure) for n in ast.parse(Path(str(f.__file__)).read_text()).body]
    top = {
        (n.module if isinstance(n, ast.ImportFrom) else a.name).split(".")[0]
        for n in body
        if isinstance(n, ast.Import | ast.ImportFrom)
        for a in n.names
    }
    top -= {"__future__", "looop", "typing"}
    home = {n.module for n in body if isinstance(n, ast.ImportFrom) and n.module}
    assert {m for m in home if m.startswith("looop.")} <= {
        "looop.contract.verbs",
        "looop.home.terminal",
        "looop.verbs.failure",
        "looop.home",  # where
        "looop.home.errors",
        "looop.home.store",
    }
    fresh = subprocess.run(
        [sys.executable, "-c", "import sys; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout.split()
    assert top <= set(sys.builtin_module_names) | set(fresh)


# The console entry against the plain one: the same output and exit code for contract verbs
# (served without click, ended without teardown) and for others, success and failure alike.
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
    code = (
        f"import sys\nfrom looop.verbs.console import {entry}\nsys.argv[1:] = {args!r}\n{entry}()\n"
    )
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
        plain = _run("run", args, env)
        ours = _run("main", args, env)
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


def _run_watching_exit(
    args: list[str], env: dict[str, str], before: str = ""
) -> tuple[int, str, str, bool]:
    """The console entry run on `args` (after the code `before`), and whether it ended by the
    fast exit (os._exit) rather than the interpreter's teardown."""
    p = subprocess.run(
        [sys.executable, "-c", _watching_exit(args, before)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    err = p.stderr.replace(FAST, "")
    return p.returncode, p.stdout, err, err != p.stderr


FAST = "<fast exit>"


def _watching_exit(args: list[str], before: str = "") -> str:
    """A program running the console entry on `args` that says FAST on stderr when it ends by
    the fast exit."""
    return (
        "import os, sys\n"
        "real = os._exit\n"
        "def fast(status):\n"
        f"    sys.stderr.write({FAST!r})\n"
        "    sys.stderr.flush()\n"
        "    real(status)\n"
        "os._exit = fast\n"
        f"{before}\n"
        "from looop.verbs.console import main\n"
        f"sys.argv[1:] = {args!r}\n"
        "main()\n"
    )


@pytest.mark.timeout(120)
def test_a_verb_ends_without_the_teardown_unless_a_thread_or_an_exit_hook_is_left(
    tmp_path: Path,
) -> None:
    """A worker's claim and a human's status end by the fast exit with their output and code;
    a process left with another thread or an exit hook ends through the teardown, which the
    hook still runs in."""
    env = outside_env(LOOOP_DATA_DIR=str(tmp_path / "data"), HOME=str(tmp_path))
    assert _run_watching_exit(["claim", "job", "--session", "w1"], env) == (
        0,
        "claimed job\n",
        "",
        True,
    )
    code, out, err, fast = _run_watching_exit(["status"], env)
    assert code == 0 and "pulse:" in out and err == "" and fast
    code, out, err, fast = _run_watching_exit(["goal", "rm", "nosuch"], env)
    assert code == 1 and out == "" and "nosuch" in err and fast
    hook = "import atexit; atexit.register(lambda: print('hook ran', file=sys.stderr))"
    code, out, err, fast = _run_watching_exit(["status"], env, hook)
    assert code == 0 and "pulse:" in out and err == "hook ran\n" and not fast
    thread = "import threading as t; t.Thread(target=t.Event().wait, daemon=True).start()"
    code, out, _, fast = _run_watching_exit(["status"], env, thread)
    assert code == 0 and "pulse:" in out and not fast


@pytest.mark.timeout(120)
def test_an_ask_and_its_answer_end_without_the_teardown(tmp_path: Path) -> None:
    """A blocked `ask` and the `answer` that frees it end by the fast exit, with their output
    and code (issue 68): a worker's door answers only once its run of `ask` has ended, and
    the interpreter's teardown was most of that wait."""
    env = outside_env(LOOOP_DATA_DIR=str(tmp_path / "data"), HOME=str(tmp_path))
    ask = ["ask", "w1", "--prompt", "merge?"]
    with subprocess.Popen(
        [sys.executable, "-c", _watching_exit(ask)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as p:
        try:
            assert p.stderr is not None
            assert "waiting for an answer to w1-1" in p.stderr.readline()  # blocked now
            answered = _run_watching_exit(["answer", "w1-1", "yes"], env)
            assert answered == (0, "answered w1-1\n", "", True)
            out, err = p.communicate(timeout=30)
        finally:
            p.kill()
    assert (p.returncode, out, err) == (0, "yes\n", FAST)
    # a mistake is still said, with its code
    code, _, err, fast = _run_watching_exit(["answer", "w1-9", "yes"], env)
    assert code == 1 and "no pending ask 'w1-9'" in err and fast
