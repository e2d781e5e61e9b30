"""The fast verbs import none of the heavy modules: a regression guard that is not a timing
test. Each verb runs in a fresh interpreter that then reports what it had loaded."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from looop.home import jsonio
from looop.home.presets import default_config_obj
from looop.sessions.client import kill, wait
from looop.sessions.spawner import spawn
from tests.clocks import FixedClock

pytestmark = pytest.mark.process  # real processes: not make check's tier

# What each costs a cold start on this machine, in ms (python -X importtime): the hot verbs'
# whole budget over a bare interpreter is about 5.
HEAVY = {
    "click": 30,
    "typing": 10,
    "pathlib": 10,
    "dataclasses": 16,
    "json": 8,
    "re": 6,
    "socket": 8,
    "subprocess": 11,
    "enum": 4,
    "datetime": 2,
    "contextlib": 4,
    "collections": 2,
    "functools": 3,
    "inspect": 7,
    "pyte": 14,  # the emulator: a live session's supervisor renders its screen
    "wcwidth": 3,
}

# Shared libraries (a dlopen each, ~0.2 ms) that verbs with no lock or no math leave alone.
NOT_FOR = {"told": {"fcntl"}, "cost": {"fcntl", "math"}, "ls": {"zlib"}, "key": {"binascii"}}
# What a verb pays for on purpose: `log` filters escape sequences with textsafe's regexes; a
# spend report asks the clock for local days (datetime, which loads math); `version` reads the
# installed distribution's metadata (importlib.metadata), as pip shows it.
ALLOWED = {
    "version": {"collections", "contextlib", "datetime", "enum", "functools", "pathlib", "re"}
    | {"socket", "typing"},
    "log": {"re", "enum", "functools", "collections"},
    "cost week": {"datetime", "math"},
    "cost all": {"datetime", "math"},
}

VERBS = [
    ["version"],
    ["unclaim", "x"],
    ["claim", "x", "--session", "w1"],
    ["unclaim", "x", "--session", "w1"],
    ["told", "w1"],
    ["tell", "w1", "hello"],
    ["cost", "report", "session", "w1", "claude", "0.42"],
    ["cost", "week"],
    ["cost", "all", "--by", "runner", "--json"],
    ["status"],
    ["status", "--json"],
    ["ls"],
    ["ls", "-a"],
    ["ls", "--json"],
    ["shot", "w1"],
    ["shot", "w1", "--json"],
    ["shot", "--ansi", "--", "w1"],
    ["send", "w1", "hello"],
    ["send", "-n", "--json", "w1", "hello"],
    ["key", "w1", "C-a", "Enter"],
    ["log", "w1"],
    ["log", "done", "-n", "5", "--grep", "x"],
]

PROBE = """
import sys
from looop.verbs.table import main
try:
    main(sys.argv[1:])
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
    allowed = ALLOWED.get(argv[0], set()) | ALLOWED.get(" ".join(argv[:2]), set())
    pins = {*HEAVY, *NOT_FOR.get(argv[0], ())} - allowed
    heavy = sorted(m for m in pins if m in mods and m not in bare)
    assert heavy == [], (
        f"looop {' '.join(argv)} loads {heavy} (~{sum(HEAVY.get(m, 0) for m in heavy)} ms)"
    )


@pytest.mark.timeout(60)
def test_the_guard_sees_a_heavy_import(data: Path) -> None:
    """The probe is not blind: a verb that goes through click shows click and typing."""
    rc, mods = _loaded(PROBE, ["claim", "--help"], data)
    assert rc == 0 and {"click", "typing", "re"} <= mods
    rc, mods = _loaded(PROBE, ["shot", "done"], data)  # a finished session's log replayed
    assert rc == 0 and {"click", "pyte"} <= mods


@pytest.mark.timeout(60)
def test_status_of_a_failing_loop_loads_nothing_heavy(tmp_path: Path) -> None:
    """A user checks status most when beats fail: the backoff it shows is read light too."""
    data = tmp_path / "data"
    data.mkdir()
    (data / ".tick-backoff").write_text('{"v":1,"fails":3,"ts":1750000000,"phash":"","hash":""}')
    rc, mods = _loaded(PROBE, ["status"], data)
    assert rc == 0
    _, bare = _loaded(
        "import sys; sys.stderr.write('\\nMODULES ' + repr([0, sorted(sys.modules)]))", [], data
    )
    heavy = sorted(m for m in HEAVY if m in mods and m not in bare)
    assert heavy == [], f"status of a failing loop loads {heavy}"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("argv", [["status"], ["status", "--json"], ["ls"]], ids=" ".join)
def test_status_and_ls_load_no_runner_profile(tmp_path: Path, argv: list[str]) -> None:
    """Which CLIs report cost is a table of names (home/cost/__init__.py): a home with its own
    config, whose status shows spend, loads none of the five profiles (~0.7 ms cold)."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "config.json").write_text(jsonio.dumps(default_config_obj()))
    rc, mods = _loaded(PROBE, argv, data)
    assert rc == 0
    profiles = {
        "runners",
        "runnerprofile",
        "presets",
        "claude",
        "codex",
        "opencode",
        "pi",
        "gemini",
    }
    loaded = sorted(m for m in mods if m.startswith("looop.home.") and m[11:] in profiles)
    assert loaded == [], f"looop {' '.join(argv)} loads {loaded}"
    assert "looop.home.cost.statusspend" in mods or argv == ["ls"]  # status still reads spend


@pytest.mark.timeout(60)
def test_a_worker_start_loads_not_the_fleet_tables_modules(tmp_path: Path) -> None:
    """`worker kill` and `worker list` are served by kill's and ls's faces, loaded only for
    them: a start loads none of the fleet table's modules (12 of them, ~2 ms cold), nor
    `uuid` and the `platform` it loads (~1.5 ms) for its conversation id, nor OpenSSL's
    `hashlib` (a seed's vouching) or `tomllib` (a sandboxed CLI's config) it does not use."""
    from looop.home.paths import Paths
    from looop.seed import ensure_data_dir

    data = tmp_path / "data"
    data.mkdir()
    ensure_data_dir(Paths.at(data))  # a home's first start writes (and vouches for) its seeds
    start = ["worker", "start", "w1", "--no-sandbox", "--command", "cat {{prompt_file}}", "hi"]
    try:
        rc, mods = _loaded(PROBE, start, data)
    finally:
        if (data / "sessions" / "w1").is_dir():
            wait(data, "w1", 30, FixedClock())
    assert rc == 0
    fleet = {"looop.verbs.ls", "looop.verbs.kill", "looop.home.render", "looop.remote.fleet"}
    assert sorted(fleet & mods) == []
    assert sorted({"uuid", "platform", "hashlib", "tomllib"} & mods) == []
    rc, mods = _loaded(PROBE, ["worker", "list", "-a"], data)
    assert rc == 0 and "looop.verbs.ls" in mods and "looop.cli.startwork" not in mods
