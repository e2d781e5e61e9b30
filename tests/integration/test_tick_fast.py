"""`looop tick`: its words, exit codes and files, a skip beat that loads no decide machinery,
and a skip beat that changes no file."""

from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from looop.core.context import Ctx
from looop.core.events import Emitter
from looop.home.paths import Paths
from looop.loop.pulse import Pulse
from looop.loop.tick import tick
from looop.spend.savings import savings_view
from tests.clocks import FixedClock
from tests.helpers import clean_env, run_cli

NOOP = 'printf \'%s\' \'{"action":"noop","journal":"all quiet"}\' > .decision.json'


def _world(data: Path, tick_command: str = NOOP) -> None:
    """A data dir with a good, a failing and a not-JSON sensor, and a runner."""
    (data / "sensors").mkdir(parents=True, exist_ok=True)
    sensors = {
        "good": 'echo \'{"signal":{"ok":true}}\'',
        "broken": "echo oops >&2; exit 3",
        "chatty": "echo not json",
    }
    for name, body in sensors.items():
        script = data / "sensors" / f"{name}.sh"
        script.write_text(f"#!/bin/sh\n{body}\n")
        script.chmod(0o755)
    cfg = {"tick_command": tick_command, "worker_command": "x {{prompt_file}}"}
    (data / "config.json").write_text(json.dumps(cfg))


def _norm(text: str, data: Path) -> str:
    """Durations measured on a real clock vary run to run; the data dirs differ by name."""
    return re.sub(r"\d+\.\d+", "N", text.replace(str(data), "<data>"))


def _tree(data: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for d, _, names in os.walk(data):
        for n in names:
            p = Path(d) / n
            text = _norm(p.read_bytes().decode("utf-8", "replace"), data)
            # the savings mark names events.jsonl by its inode: each data dir's own
            out[str(p.relative_to(data))] = re.sub(r'"mark":\[\d+,', '"mark":[INODE,', text)
    return out


STEPS: list[tuple[list[str], str | None]] = [
    (["tick"], None),  # the first beat decides (noop)
    (["tick"], None),  # unchanged: a skip beat
    (["tick", "--force"], None),  # decides again
    (["tick"], "exit 3"),  # the world moved and the runner fails: exit 1
    (["tick"], None),  # backing off: a hint on stderr, exit 0
    (["tick", "--force"], NOOP),  # through the backoff
]


@pytest.mark.timeout(120)
def test_a_tick_says_exits_and_writes_what_a_beat_did(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    _world(data)
    env = clean_env(tmp_path, data)
    got = []
    for argv, runner in STEPS:
        if runner is not None:
            _world(data, runner)
            sensor = data / "sensors" / "good.sh"
            sensor.write_text(f'#!/bin/sh\necho \'{{"signal":{{"r":"{runner}"}}}}\'\n')
        got.append(run_cli(capsys, *argv, env=env, clock=FixedClock()))
    assert [code for code, _, _ in got] == [0, 0, 0, 1, 0, 0]
    assert "world unchanged" in got[1][2]
    assert "backing off after failed beats" in got[4][2]
    assert any(name.startswith("runs/") for name in _tree(data))


@pytest.mark.timeout(60)
def test_a_beat_held_by_another_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import fcntl

    data = tmp_path / "data"
    _world(data)
    env = clean_env(tmp_path, data)
    lock = data / ".lock" / "lock"
    lock.parent.mkdir(parents=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a running pulse holds it
        code, _, err = run_cli(capsys, "tick", env=env, clock=FixedClock())
    finally:
        os.close(fd)
    assert code == 1 and "a pulse is running" in err


SKIP_PROBE = """
import json, sys
from looop.verbs.console import run
try:
    run(["tick"], json.loads(sys.argv[1]))
except SystemExit as e:
    assert not e.code, e.code
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.timeout(60)
def test_a_skip_beat_loads_no_decide_machinery(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _world(data)
    env = clean_env(tmp_path, data)  # the beat runs in this process

    def beat() -> set[str]:
        proc = subprocess.run(
            [sys.executable, "-c", SKIP_PROBE, json.dumps(env)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=50,
        )
        assert proc.returncode == 0, proc.stderr
        return set(json.loads(proc.stdout))

    decided = beat()  # the first beat decides: the machinery loads when it is needed
    assert "looop.act.executor" in decided and "looop.decide.runner" in decided
    skipped = beat()
    heavy = {
        "pyte",
        "wcwidth",
        "looop.act.executor",
        "looop.act.shell",
        "looop.decide.prompt",
        "looop.decide.runner",
        "looop.decide.spend",
        "looop.views.status",
        "looop.workers.launch",
        "looop.sessions.screen",
        "looop.human.schedules",
    }
    assert sorted(heavy & skipped) == []
    assert {"looop.sense.sensors", "looop.loop.world"} <= skipped


def _files(data: Path) -> dict[str, tuple[int, int, int]]:
    out: dict[str, tuple[int, int, int]] = {}
    for d, _, names in os.walk(data):
        for n in names:
            st = os.lstat(os.path.join(d, n))
            out[os.path.relpath(os.path.join(d, n), data)] = (
                st.st_ino,
                st.st_mtime_ns,
                st.st_size,
            )
    return out


def _only_appended(data: Path, beat: Callable[[], None]) -> None:
    """One skip beat: no file under the data dir written, renamed or touched but
    events.jsonl, which only grew in place (the bench's row, bench_sensors._touched)."""
    events = data / "events.jsonl"
    before, log = _files(data), events.read_bytes()
    beat()
    after = _files(data)
    changed = sorted(
        k
        for k in before.keys() | after.keys()
        if k != "events.jsonl" and before.get(k) != after.get(k)
    )
    assert changed == []  # no snapshot, state, status, journal or savings file touched
    assert after["events.jsonl"][0] == before["events.jsonl"][0]  # appended in place
    assert events.read_bytes().startswith(log) and len(events.read_bytes()) > len(log)


@pytest.mark.timeout(60)
def test_a_skip_beat_changes_no_file_but_appends_its_events(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    _world(data)
    env = clean_env(tmp_path, data)
    clock = FixedClock()
    assert run_cli(capsys, "tick", env=env, clock=clock)[0] == 0  # decides, commits the world
    saved = savings_view(str(data), clock)["today"]

    def beat() -> None:
        code, _, err = run_cli(capsys, "tick", env=env, clock=clock)
        assert code == 0 and "world unchanged" in err

    _only_appended(data, beat)
    # yet the skip is counted, as every face shows it (spend/savings.py)
    assert savings_view(str(data), clock)["today"] == {**saved, "skipped": saved["skipped"] + 1}


@pytest.mark.timeout(60)
def test_a_skip_beat_in_the_pulse_changes_no_file_but_appends_its_events(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    _world(data)
    env = clean_env(tmp_path, data)
    clock = FixedClock()
    assert run_cli(capsys, "tick", env=env, clock=clock)[0] == 0  # decides, commits the world
    paths = Paths.at(data)
    ctx = Ctx(paths=paths, clock=clock, env=env, events=Emitter(clock, paths.events))
    pulse = Pulse(ctx)
    assert tick(ctx, memo=pulse.memo).status == "skip"  # the pulse's first beat reads the world

    def beat() -> None:  # as Pulse._loop beats: tick, choose its sleep, record it
        out = tick(ctx, memo=pulse.memo)
        assert out.status == "skip"
        secs, reason, _ = pulse.choose_sleep(out)
        ctx.events.record("pulse_sleep", secs=secs, reason=reason, until="-")

    _only_appended(data, beat)
    assert savings_view(str(data), clock)["today"]["skipped"] == 2


def test_the_tick_pid_file_is_where_status_looks_for_it(tmp_path: Path) -> None:
    from looop.home.locks import beat_holder_at
    from looop.home.paths import Paths
    from looop.loop.tick import tick_pid_path

    paths = Paths.at(tmp_path / "data")
    tick_pid_path(paths).parent.mkdir(parents=True)
    tick_pid_path(paths).write_text("4242\n")
    with open(paths.lock_dir / "lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert beat_holder_at(str(paths.data)) == ("tick", "4242")
