"""A newcomer's first ten minutes: help that finds things, init that leaves nothing half-done,
steering verbs that refuse empty bodies, answers held to their options."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Cli, until

pytestmark = pytest.mark.timeout(60)


def one_line_error(code: int, out: str, err: str, want: int = 2) -> bool:
    """One line on stderr, nothing on stdout, and the exit: 2 a usage mistake, 1 a failure."""
    return code == want and out == "" and err.startswith("looop: ") and err.count("\n") == 1


# ---------------------------------------------------------------- help


def test_help_walks_multi_word_topics(data: Path, cli: Cli) -> None:
    code, out, _ = cli("help", "worker", "start")
    assert code == 0 and out.startswith("Usage: looop worker start") and "--verify" in out
    code, out, _ = cli("help", "schedule", "write")
    assert code == 0 and "Usage: looop schedule write" in out
    res = cli("help", "worker", "strat")
    assert one_line_error(*res) and "did you mean `start`" in res[2]
    res = cli("help", "version", "x")
    assert one_line_error(*res) and "no subcommands" in res[2]
    res = cli("help", "worker", "start", "x")
    assert one_line_error(*res) and "`looop help worker start`" in res[2]
    assert not data.exists()


def test_a_top_level_typo_suggests_the_verb(data: Path, cli: Cli) -> None:
    res = cli("stauts")
    assert one_line_error(*res) and "did you mean `status`" in res[2]
    res = cli("help", "jurnal")
    assert one_line_error(*res) and "did you mean `journal`" in res[2]
    res = cli("goal", "rmm", "ship")
    assert one_line_error(*res) and "did you mean `rm`" in res[2] and "looop goal --help" in res[2]
    res = cli("xyzzy")
    assert one_line_error(*res) and "did you mean" not in res[2] and "looop --help" in res[2]


def test_top_level_help_lists_each_verb_once(data: Path, cli: Cli) -> None:
    code, out, _ = cli("--help")
    assert code == 0
    verbs, _, aliases = out.partition("Aliases:")
    rows = verbs.split("Commands:")[1].splitlines()
    listed = [ln.split()[0] for ln in rows if ln.startswith("  ") and ln[2] != " "]
    for alias in ("state", "screenshot", "ls", "kill", "config"):
        assert alias not in listed
    for verb in ("status", "shot", "worker", "completion", "init"):
        assert verb in listed
    assert "state = status" in aliases and "ls = worker list" in aliases
    assert "alias of" not in out
    code, out, _ = cli("worker", "list", "--help")
    assert code == 0 and "alias" not in out


def test_worker_ls_works_as_documented(data: Path, cli: Cli) -> None:
    code, out, _ = cli("worker", "ls")
    assert code == 0 and "pulse" in out and "HEALTH" in out
    assert cli("worker", "list")[1] == out
    code, out, _ = cli("worker", "--help")
    assert code == 0 and out.count("List the pulse") == 1


def test_completion_verb_and_its_old_spelling(data: Path, cli: Cli) -> None:
    for verb in ("completion", "config"):
        code, out, _ = cli(verb, "zsh")
        assert code == 0 and "#compdef looop" in out
        code, out, _ = cli(verb, "fish")
        assert code == 0 and "complete" in out and "looop" in out
    res = cli("completion")
    assert one_line_error(*res) and "looop completion zsh" in res[2]
    res = cli("completion", "tcsh")
    assert res[0] == 2 and "tcsh" in res[2]
    assert not data.exists()


# ---------------------------------------------------------------- init


# x86_64 syscalls a process blocked on its terminal sits in: read, poll, select, pselect6, ppoll
_WAITING_SYSCALLS = {"0", "7", "23", "270", "271"}


def _blocked_reading(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/syscall") as f:
            return f.read().split(" ", 1)[0] in _WAITING_SYSCALLS
    except OSError:
        return True  # cannot tell here: type anyway


def _init_on_a_terminal(env: dict[str, str], keys: bytes) -> tuple[int, str]:
    """`looop init` on a real PTY (interactive); `keys` are typed at the first question."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: a session leader whose controlling terminal is the PTY
        # as a shell starts a command: Ctrl-C live even if this test process ignores it
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        os.execve(sys.executable, [sys.executable, "-m", "looop", "init"], env)
    seen = b""
    typed = False
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
            if not typed and b"Runner" in seen:
                # type only once the child blocks reading the terminal: a signal that lands
                # between printing the prompt and entering the read is CPython's own race
                # (input() then blocks until a newline), not something a human can hit
                until(lambda: _blocked_reading(pid), 10)
                os.write(fd, keys)
                typed = True
                deadline = time.monotonic() + 30  # its own time to react, however slow the start
        done, status = os.waitpid(pid, os.WNOHANG)
        while not done and time.monotonic() < deadline:
            time.sleep(0.05)  # the child exits on its own; bounded
            done, status = os.waitpid(pid, os.WNOHANG)
        if not done:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError(f"init still running after {keys!r}; its screen:\n{seen!r}")
    finally:
        os.close(fd)
    return os.waitstatus_to_exitcode(status), seen.decode(errors="replace")


@pytest.mark.timeout(80)
@pytest.mark.parametrize("keys", [b"\x03", b"\x04"], ids=["ctrl-c", "eof"])
def test_a_cancelled_init_leaves_nothing_behind(data: Path, cli: Cli, keys: bytes) -> None:
    code, screen = _init_on_a_terminal(cli.child_env(), keys)
    assert code == 130, screen
    assert "nothing was written" in screen and "Traceback" not in screen
    assert not data.exists()


def test_a_refused_init_leaves_nothing_behind(data: Path, cli: Cli) -> None:
    res = cli("init", "--runner", "custom", "--tick-command", "my-agent -p")
    assert one_line_error(*res, want=1) and "needs --worker-command" in res[2]
    res = cli("init", "--runner", "custom")
    assert one_line_error(*res, want=1)
    assert "--tick-command" in res[2] and "--worker-command" in res[2]
    res = cli("init", "--runner", "custom", "--tick-command", "a", "--worker-command", "b")
    assert one_line_error(*res, want=1) and "{{prompt_file}}" in res[2]
    res = cli("init", "--runner", "nope")
    assert one_line_error(*res) and "custom" in res[2]
    res = cli("init", "--tick-command")
    assert one_line_error(*res)
    assert not data.exists()


def test_init_custom_warns_about_the_unmetered_breaker(data: Path, cli: Cli) -> None:
    args = (
        "init",
        "--runner",
        "custom",
        "--tick-command",
        "a -p",
        "--worker-command",
        "a {{prompt_file}}",
    )
    code, out, _ = cli(*args)  # the default budget: its decides uncounted, its workers held
    assert code == 0 and "does not count its decides" in out and "runners.custom.cost" in out
    # one budget on every face: status and doctor say the $10 that `worker start` holds to
    assert "of $10.00 budget" in cli("status")[1]
    assert "daily budget $10 over workers" in cli("doctor")[1]
    cfg = json.loads((data / "config.json").read_text())
    cfg["max_daily_usd"] = 5  # a budget the user sets holds, fail-closed
    (data / "config.json").write_text(json.dumps(cfg))
    code, out, _ = cli(*args, "--force")
    assert code == 0 and "unmetered" in out
    assert "runners.custom.cost" in out and '"max_daily_usd": 0' in out
    assert "of $5.00 budget" in cli("status")[1]
    cfg = json.loads((data / "config.json").read_text())
    cfg["max_daily_usd"] = 0  # the remedy it names silences it
    (data / "config.json").write_text(json.dumps(cfg))
    code, out, _ = cli(*args, "--force")
    assert code == 0 and "unmetered" not in out
    code, out, _ = cli("init", "--runner", "claude", "--force")
    assert code == 0 and "unmetered" not in out
    # the other remedy: a cost spec, which a later re-init keeps
    cfg = json.loads((data / "config.json").read_text())
    del cfg["max_daily_usd"]
    spec = {"type": "result", "pointer": "/usd", "mode": "total"}
    cfg["runners"] = {"custom": {"tick": "a -p", "worker": "a {{prompt_file}}", "cost": spec}}
    (data / "config.json").write_text(json.dumps(cfg))
    code, out, _ = cli(*args, "--force")
    assert code == 0 and "unmetered" not in out
    assert json.loads((data / "config.json").read_text())["runners"]["custom"]["cost"] == spec


# ---------------------------------------------------------------- steering verbs


@pytest.mark.parametrize(
    "args",
    [
        ["goal", "write", "g", ""],
        ["goal", "write", "g", "  \n\t"],
        ["sensor", "write", "s", ""],
        ["sensor", "write", "s", "\n\n"],
        ["playbook", "write", " "],
    ],
)
def test_empty_bodies_are_refused(data: Path, cli: Cli, args: list[str]) -> None:
    res = cli(*args)
    assert one_line_error(*res, want=1) and "empty" in res[2]
    assert not (data / "goals" / "g.md").exists() and not (data / "sensors" / "s.sh").exists()
    assert "write-" not in (
        (data / "journal.md").read_text() if (data / "journal.md").exists() else ""
    )


def test_empty_body_on_stdin_is_refused(data: Path, cli: Cli) -> None:
    res = cli("goal", "write", "g", "-", stdin="\n  \n")
    assert one_line_error(*res, want=1) and "looop goal rm g" in res[2]
    assert not (data / "goals" / "g.md").exists()


def test_sensor_rm_and_goal_rm_are_journaled_moves(data: Path, cli: Cli) -> None:
    assert cli("sensor", "write", "ci", "echo '{}'")[0] == 0
    assert cli("goal", "write", "ship", "goal: ship v1")[0] == 0
    code, out, _ = cli("sensor", "rm", "ci")
    assert code == 0 and "remove-sensor ci" in out
    assert not (data / "sensors" / "ci.sh").exists()
    code, out, _ = cli("goal", "rm", "ship", "--journal", "dropped ship")
    assert code == 0
    assert not (data / "goals" / "ship.md").exists()
    assert (data / "goals" / "archive" / "ship.md").read_text() == "goal: ship v1\n"
    journal = (data / "journal.md").read_text()
    assert "remove-sensor ci" in journal and "dropped ship" in journal
    steered = [
        json.loads(ln)
        for ln in (data / "events.jsonl").read_text().splitlines()
        if '"steered"' in ln
    ]
    assert [e["action"] for e in steered][-2:] == ["remove-sensor", "archive"]
    # gone already: moves are level-triggered, a success that journals what it found
    code, out, _ = cli("sensor", "rm", "ci")
    assert code == 0 and "sensors/ci.sh was already gone" in out
    code, out, _ = cli("goal", "rm", "ship")
    assert code == 0 and "goals/archive/ship.md was already archived" in out
    journal = (data / "journal.md").read_text()
    assert journal.count("already") == 2
    # never there, or a name that is not one: one line, nothing journaled
    for args in (["goal", "rm", "never"], ["goal", "rm", "../etc"]):
        res = cli(*args)
        assert one_line_error(*res, want=1), args
    assert (data / "journal.md").read_text() == journal


# ---------------------------------------------------------------- answers


def _ask(data: Path, options: list[str]) -> str:
    from looop.home.paths import Paths
    from looop.human.mailbox import new_ask

    p = Paths.at(data)
    return str(new_ask(p.asks, p.answers, "w1", "Merge PR 7?", None, options, 0.0)["id"])


def _answer_of(data: Path, ask_id: str) -> str | None:
    path = data / "answers" / f"{ask_id}.json"
    return json.loads(path.read_text())["answer"] if path.exists() else None


def test_answer_is_held_to_the_asks_options(data: Path, cli: Cli) -> None:
    ask_id = _ask(data, ["yes", "no"])
    res = cli("answer", ask_id, "maybe")
    assert one_line_error(*res, want=1) and "yes, no" in res[2] and "--force" in res[2]
    assert _answer_of(data, ask_id) is None
    # any case, stored as the option is spelled
    code, out, _ = cli("answer", ask_id, " Yes ")
    assert code == 0 and ask_id in out and _answer_of(data, ask_id) == "yes"
    code, _, _ = cli("answer", ask_id, "maybe", "--force")
    assert code == 0 and _answer_of(data, ask_id) == "maybe"


def test_an_ask_without_options_takes_any_answer(data: Path, cli: Cli) -> None:
    ask_id = _ask(data, [])
    code, _, _ = cli("answer", ask_id, "whatever you think")
    assert code == 0 and _answer_of(data, ask_id) == "whatever you think"
    res = cli("answer", "nope-1", "x")
    assert one_line_error(*res, want=1) and "looop asks" in res[2]


# ---------------------------------------------------------------- send


RAW_READER = """
import os, sys, termios, tty
tty.setraw(0)
print("ready", flush=True)
got = b""
while b"\\r" not in got and b"\\n" not in got:
    got += os.read(0, 100)
sys.stdout.write("got=" + repr(got) + "\\r\\n")
"""


@pytest.fixture
def sessions(data: Path) -> Iterator[Path]:
    data.mkdir(parents=True, exist_ok=True)
    yield data
    from looop.sessions.state import list_sessions

    for s in list_sessions(data):  # leave no process behind
        for pid, sig in ((s.child_pid, signal.SIGKILL), (s.supervisor_pid, signal.SIGKILL)):
            if pid and s.alive:
                with contextlib.suppress(OSError):
                    os.kill(pid, sig)


def _expect(root: Path, sid: str, pattern: str) -> str:
    from looop.home.clock import SystemClock
    from looop.sessions.client import expect

    code, match, _ = expect(root, sid, pattern, timeout_s=20, clock=SystemClock(None))
    assert code == 0, (sid, pattern)
    return match or ""


@pytest.mark.timeout(60)
def test_send_presses_enter_once(sessions: Path, cli: Cli) -> None:
    from looop.sessions.spawner import spawn

    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(sessions)}
    # a raw-mode program (an agent TUI) sees the Enter key, CR, right after the text
    spawn(sessions, "tui", [sys.executable, "-c", RAW_READER], cwd=sessions, env=env)
    _expect(sessions, "tui", "ready")
    assert cli("send", "tui", "also run the linters")[0] == 0
    assert "also run the linters\\r'" in _expect(sessions, "tui", r"got=.*")
    # a line-mode program (a shell) runs the line once: no extra blank submission
    spawn(sessions, "sh", ["/bin/sh", "-i"], cwd=sessions, env={**env, "PS1": "$ "})
    _expect(sessions, "sh", r"\$ ")
    assert cli("send", "sh", "echo one-$((1+1))")[0] == 0
    _expect(sessions, "sh", "one-2")
    assert cli("send", "-n", "sh", "echo tw")[0] == 0
    assert cli("send", "sh", "o-$((1+2))")[0] == 0
    _expect(sessions, "sh", "two-3")
    assert cli("send", "sh", "exit")[0] == 0
    from looop.home.clock import SystemClock
    from looop.home.paths import Paths
    from looop.sessions.client import wait

    assert wait(sessions, "sh", 20, SystemClock(None)) == 0  # every prompt it will print is in

    log = (Paths.at(sessions).sessions / "sh" / "output.log").read_bytes()
    assert log.count(b"$ ") == 3  # three prompts: start, after one, after two — never a fourth


# ---------------------------------------------------------------- config typos


def test_unknown_config_keys_warn_once_with_a_suggestion(data: Path, cli: Cli) -> None:
    assert cli("init", "--runner", "pi")[0] == 0
    cfg = json.loads((data / "config.json").read_text())
    cfg.update(intervall=30, sensor_timeout=5, zzzq=1, _comment="mine")
    cfg["runners"]["pi"]["workr"] = "x"
    (data / "config.json").write_text(json.dumps(cfg))
    code, out, err = cli("goal", "write", "ship", "goal: ship")
    assert code == 0 and "write-goal ship" in out  # a warning, not an error
    lines = err.splitlines()
    assert len(lines) == 4, err  # once each
    assert "'intervall'" in err and "did you mean 'interval'" in err
    assert "LOOOP_SENSOR_TIMEOUT" in err  # a knob that lives in the environment only
    assert "'zzzq'" in err and "runners.pi.workr" in err and "'worker'" in err
    assert "_comment" not in err
    code, out, err = cli("worker", "list", "--json")
    assert code == 0 and json.loads(out) is not None  # stdout stays data
    assert "intervall" in err
    del cfg["intervall"], cfg["sensor_timeout"], cfg["zzzq"], cfg["runners"]["pi"]["workr"]
    (data / "config.json").write_text(json.dumps(cfg))
    code, _, err = cli("goal", "write", "ship", "goal: ship v2")
    assert code == 0 and err == ""


def test_status_first_does_not_cost_the_starter_files(data: Path, cli: Cli) -> None:
    assert cli("status")[0] == 0  # a newcomer's first command may well be this one
    assert cli("goal", "write", "ship", "goal: ship v1")[0] == 0
    assert (data / "PLAYBOOK.md").exists() and (data / "sensors" / "today.sh").exists()
    assert (data / "config.json").exists() and (data / "goals" / "setup.md").exists()
