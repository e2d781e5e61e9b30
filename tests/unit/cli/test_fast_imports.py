"""The worker contract's verbs (claim, unclaim, tell, told, cost report) import none of the
heavy modules: a regression guard that is not a timing test. Each verb runs in a fresh
interpreter that then reports what it had loaded."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from looop.sessions.client import kill, wait
from looop.sessions.spawner import spawn
from tests.clocks import FixedClock

pytestmark = pytest.mark.process  # real processes: not make check's tier

# What each costs a cold start on this machine, in ms (python -X importtime): the hot verbs'
# whole budget over a bare interpreter is about 10 (json and typing are the ground floor's).
HEAVY = {
    "click": 30,
    "pathlib": 10,
    "dataclasses": 16,
    "socket": 8,
    "subprocess": 11,
    "datetime": 2,
    "inspect": 7,
}

# Shared libraries (a dlopen each, ~0.2 ms) that verbs with no lock or no math leave alone
# (`cost report` takes the spend lock when its row starts a new month's ledger).
NOT_FOR = {"told": {"fcntl"}, "cost": {"math"}}

VERBS = [
    ["unclaim", "x"],
    ["claim", "x", "--session", "w1"],
    ["unclaim", "x", "--session", "w1"],
    ["told", "w1"],
    ["tell", "w1", "hello"],
    ["cost", "report", "session", "w1", "claude", "0.42"],
]

PROBE = """
import sys
from looop.verbs.console import run
try:
    run(sys.argv[1:])
except SystemExit as e:
    code = e.code
else:
    code = 0
sys.stdout.flush()
sys.stderr.write("\\nMODULES " + repr([code, sorted(sys.modules)]) + "\\n")
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    d = tmp_path_factory.mktemp("imports") / "data"
    d.mkdir()
    spawn(d, "w1", ["cat"], cwd=d, env=dict(os.environ))
    spawn(d, "done", ["true"], cwd=d, env=dict(os.environ))
    wait(d, "done", 30, FixedClock())
    try:
        yield d
    finally:
        kill(d, "w1")
        wait(d, "w1", 30, FixedClock())


def _loaded(code: str, args: list[str], data: Path) -> tuple[object, set[str]]:
    env = {"PATH": os.environ.get("PATH", "/bin"), "HOME": str(data), "LOOOP_DATA_DIR": str(data)}
    r = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=60
    )
    tail = r.stderr.rsplit("\nMODULES ", 1)
    assert len(tail) == 2, r.stderr
    rc, mods = ast.literal_eval(tail[1])
    return rc, set(mods)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("argv", VERBS, ids=[" ".join(v) for v in VERBS])
def test_a_fast_verb_loads_nothing_heavy(data: Path, argv: list[str]) -> None:
    _, bare = _loaded(
        "import sys; sys.stderr.write('\\nMODULES ' + repr([0, sorted(sys.modules)]))", [], data
    )
    rc, mods = _loaded(PROBE, argv, data)
    assert rc == 0, f"looop {' '.join(argv)} failed"
    pins = {*HEAVY, *NOT_FOR.get(argv[0], ())}
    heavy = sorted(m for m in pins if m in mods and m not in bare)
    assert heavy == [], (
        f"looop {' '.join(argv)} loads {heavy} (~{sum(HEAVY.get(m, 0) for m in heavy)} ms)"
    )


@pytest.mark.timeout(60)
def test_the_guard_sees_a_heavy_import(data: Path) -> None:
    """The probe is not blind: a verb that goes through click shows click and typing."""
    rc, mods = _loaded(PROBE, ["claim", "--help"], data)
    assert rc == 0 and {"click", "typing", "re"} <= mods
    rc, mods = _loaded(PROBE, ["status"], data)  # every verb a human types: click
    assert rc == 0 and "click" in mods


@pytest.mark.timeout(60)
def test_the_help_lists_every_verb_loading_none(data: Path) -> None:
    """`looop --help` prints click's own text from a file: neither click nor a verb loads."""
    from looop.cli.commands import COMMANDS

    rc, mods = _loaded(PROBE, ["--help"], data)
    assert rc == 0 and "click" not in mods
    assert sorted({target.split(":")[0] for target in COMMANDS} & mods) == []


@pytest.mark.timeout(60)
@pytest.mark.parametrize("argv", [["status"], ["ls", "-a"], ["needs"]], ids=" ".join)
def test_a_glance_loads_no_other_verbs_modules(data: Path, argv: list[str]) -> None:
    """A human's most frequent verbs load click and their own family (cli/status.py,
    cli/needs.py), never another verb's module (the journal's, the worker moves')."""
    from looop.cli.commands import COMMANDS

    rc, mods = _loaded(PROBE, argv, data)
    assert rc == 0
    others = {target.split(":")[0] for target in COMMANDS.values()}
    # the root every click verb loads holds `version` itself
    others -= {"looop.cli.needs", "looop.cli.status", "looop.cli.root"}
    assert sorted(others & mods) == []


@pytest.mark.timeout(60)
@pytest.mark.parametrize("argv", [["send", "w1", "hi"], ["key", "w1", "Enter"]], ids=" ".join)
def test_driving_a_session_loads_no_worker_start_or_resume(data: Path, argv: list[str]) -> None:
    """`send` and `key` type into a running worker: a start again on its conversation
    (`restart`) and the kept worktrees (`prune`, `worktrees`) are other verbs' machinery."""
    rc, mods = _loaded(PROBE, argv, data)
    assert rc == 0
    starts = {"looop.workers.resume", "looop.workers.launch", "looop.workers.kepttrees"}
    assert sorted(starts & mods) == []


@pytest.mark.timeout(60)
def test_version_and_answer_load_only_what_they_use(data: Path) -> None:
    """`looop version` prints a constant: no agent CLI's profile (a 40-field dataclass, the
    runners' JSON readers); `looop answer` writes a file: not the inotify watching (ctypes)
    that only the waiting `looop ask` needs; no verb builds the terminal's escape table
    before it prints a control character."""
    from looop.human.mailbox import new_ask

    rc, mods = _loaded(PROBE, ["version"], data)
    assert rc == 0 and "looop.runners" not in mods and "looop.runners.runnerprofile" not in mods
    ask = new_ask(data / "asks", data / "answers", "w1", "ship?", None, [], 0)["id"]
    rc, mods = _loaded(
        PROBE.replace("sys.stdout.flush()", CHECK_VISIBLE), ["answer", ask, "yes"], data
    )
    assert rc == 0 and "looop.human.mailbox" in mods
    assert sorted(m for m in ("looop.core.watching", "inotify_simple", "ctypes") if m in mods) == []


# after the verb ran: the escape table home/terminal.py builds for a text with a control in it
CHECK_VISIBLE = """
from looop.home.terminal import _VISIBLE
assert not _VISIBLE, "the escape table was built for a verb that printed no control"
sys.stdout.flush()
"""
