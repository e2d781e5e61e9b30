"""User sensors: concurrency, timeouts, caps, normalisation, interval cache, pruning."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from looop.core import procs
from looop.core.context import Ctx
from looop.core.readings import Reading
from looop.home.paths import Paths
from looop.sense import sense
from looop.sense.probes import default_probes
from looop.sense.sensors import interval_of, run_user_sensors
from tests.clocks import FixedClock
from tests.procwatch import FIXTURES, Zombies, kill_all, tagged
from tests.procwatch import children as procwatch_children

pytestmark = pytest.mark.process  # real processes: not make check's tier


def add_sensor(
    paths: Paths, stem: str, body: str, *, shebang: bool = True, mode: int = 0o755
) -> Path:
    script = paths.sensors / f"{stem}.sh"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(("#!/bin/sh\n" if shebang else "") + body)
    script.chmod(mode)
    return script


def with_env(ctx: Ctx, **env: str) -> Ctx:
    return replace(ctx, env={**ctx.env, **env})


def snapshot(paths: Paths, name: str) -> Any:
    return json.loads((paths.snapshots / f"{name}.json").read_text())


def run(ctx: Ctx) -> dict[str, Reading]:
    return {r.name: r for r in run_user_sensors(ctx, ctx.knobs())}


def gone_or_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


# ------------------------------------------------------------------ normal runs


@pytest.mark.timeout(10)
def test_json_reading_is_kept_as_printed(ctx: Ctx, paths: Paths) -> None:
    add_sensor(paths, "today", """printf '  {"signal": {"b": 1},  "detail": {"n": 2}}  \\n\\n'\n""")
    got = run(ctx)
    assert got["sensor-today"].ok and not got["sensor-today"].cached
    raw = (paths.snapshots / "sensor-today.json").read_bytes()
    assert raw == b'{"signal": {"b": 1},  "detail": {"n": 2}}\n'
    assert not (paths.snapshots / "sensor-today.err").exists()
    # the beat's reading: parsed once, its bytes the file's
    r = got["sensor-today"]
    assert (r.signal, r.detail, r.failed, r.to_json()) == ({"b": 1}, {"n": 2}, False, raw)
    assert r.interval is None  # no `# looop:interval=N`: it runs every beat


@pytest.mark.timeout(10)
def test_sensor_runs_in_data_dir_with_child_env_and_no_stdin(ctx: Ctx, paths: Paths) -> None:
    add_sensor(
        paths,
        "where",
        'cat >/dev/null\nprintf \'{"signal":{"cwd":"%s","data":"%s"}}\' '
        '"$(pwd -P)" "$LOOOP_DATA_DIR"\n',
    )
    run(ctx)
    sig = snapshot(paths, "sensor-where")["signal"]
    assert sig["cwd"] == str(paths.data.resolve())
    assert sig["data"] == str(paths.data)


@pytest.mark.timeout(10)
def test_stderr_of_a_good_sensor_lands_in_err_and_is_removed_when_quiet(
    ctx: Ctx, paths: Paths
) -> None:
    add_sensor(paths, "s", "echo warming up >&2\necho '{}'\n")
    assert run(ctx)["sensor-s"].ok
    assert (paths.snapshots / "sensor-s.err").read_text() == "warming up\n"
    add_sensor(paths, "s", "echo '{}'\n")
    run(ctx)
    assert not (paths.snapshots / "sensor-s.err").exists()


# ------------------------------------------------------------------ failures


@pytest.mark.timeout(10)
def test_failing_sensor_gets_normalised_snapshot(ctx: Ctx, paths: Paths) -> None:
    add_sensor(paths, "bad", 'echo \'{"signal":"half"}\'\necho kaboom >&2\nexit 3\n')
    r = run(ctx)["sensor-bad"]
    assert not r.ok and r.error is not None and "kaboom" in r.error
    snap = snapshot(paths, "sensor-bad")
    assert snap["signal"] == {"error": True, "exit_code": 3}
    assert snap["detail"]["stderr"] == "kaboom"
    assert "exited with code 3" in snap["detail"]["message"]
    assert "kaboom" in (paths.snapshots / "sensor-bad.err").read_text()
    assert r.failed and r.signal == snap["signal"] and r.detail == snap["detail"]


@pytest.mark.timeout(10)
def test_signal_death_reports_128_plus_signo(ctx: Ctx, paths: Paths) -> None:
    add_sensor(paths, "sig", "kill -TERM $$\n")
    run(ctx)
    snap = snapshot(paths, "sensor-sig")
    assert snap["signal"] == {"error": True, "exit_code": 143}
    assert "SIGTERM" in snap["detail"]["message"]


@pytest.mark.timeout(10)
def test_hanging_sensor_is_killed_at_the_timeout(ctx: Ctx, paths: Paths) -> None:
    add_sensor(paths, "hang", "sleep 100 &\necho $! > hang.pid\nwait\n")
    live = with_env(ctx, LOOOP_SENSOR_TIMEOUT="1")
    t0 = time.monotonic()
    r = run(live)["sensor-hang"]
    elapsed = time.monotonic() - t0
    assert 0.9 <= elapsed < 4.0
    assert not r.ok
    snap = snapshot(paths, "sensor-hang")
    assert snap["signal"] == {"error": True, "exit_code": 124}
    assert "LOOOP_SENSOR_TIMEOUT" in snap["detail"]["message"]
    assert "timed out" in (paths.snapshots / "sensor-hang.err").read_text()
    # The whole group died, not just the shell.
    pid = int((paths.data / "hang.pid").read_text())
    deadline = time.monotonic() + 3
    while not gone_or_zombie(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert gone_or_zombie(pid)


@pytest.mark.timeout(10)
def test_flood_is_stopped_at_the_cap_with_a_stable_signal(ctx: Ctx, paths: Paths) -> None:
    add_sensor(paths, "flood", "yes\n")
    live = with_env(ctx, LOOOP_SENSOR_MAX_BYTES="8192", LOOOP_SENSOR_TIMEOUT="30")
    signals = []
    for _ in range(2):
        t0 = time.monotonic()
        r = run(live)["sensor-flood"]
        assert time.monotonic() - t0 < 5.0
        assert not r.ok
        assert (paths.snapshots / "sensor-flood.json").stat().st_size < 2048
        snap = snapshot(paths, "sensor-flood")
        assert snap["detail"]["bytes_at_least"] > 8192
        signals.append(snap["signal"])
    assert signals[0] == signals[1] == {"cap": 8192, "error": "oversize"}


@pytest.mark.timeout(10)
def test_output_at_the_cap_is_kept_and_cap_zero_disables(ctx: Ctx, paths: Paths) -> None:
    big = '{"signal":{},"detail":{"x":"' + "a" * 20000 + '"}}'
    add_sensor(paths, "big", f"echo '{big}'\n")
    assert not run(with_env(ctx, LOOOP_SENSOR_MAX_BYTES="8192"))["sensor-big"].ok
    assert run(with_env(ctx, LOOOP_SENSOR_MAX_BYTES="0"))["sensor-big"].ok
    assert snapshot(paths, "sensor-big")["detail"]["x"] == "a" * 20000
    exact = len(big) + 1  # echo adds the newline
    assert run(with_env(ctx, LOOOP_SENSOR_MAX_BYTES=str(exact)))["sensor-big"].ok


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("body", "head"),
    [
        ("echo hello world\n", "hello world"),
        ("printf '\\377\\376{}'\n", "\ufffd\ufffd{}"),
        ("echo NaN\n", "NaN"),
    ],
)
def test_non_json_output_is_normalised(ctx: Ctx, paths: Paths, body: str, head: str) -> None:
    add_sensor(paths, "junk", body)
    r = run(ctx)["sensor-junk"]
    assert not r.ok
    snap = snapshot(paths, "sensor-junk")
    assert snap["signal"] == {"error": "not-json"}
    assert snap["detail"]["head"] == head
    assert "JSON" in snap["detail"]["message"]


@pytest.mark.timeout(10)
def test_empty_output_is_normalised(ctx: Ctx, paths: Paths) -> None:
    add_sensor(paths, "quiet", "true\n")
    assert not run(ctx)["sensor-quiet"].ok
    snap = snapshot(paths, "sensor-quiet")
    assert snap["signal"] == {"error": "not-json"}
    assert "printed nothing" in snap["detail"]["message"]


def test_non_executable_script_says_chmod(ctx: Ctx, paths: Paths) -> None:
    add_sensor(paths, "nox", "echo '{}'\n", mode=0o644)
    r = run(ctx)["sensor-nox"]
    assert not r.ok and r.error is not None and "chmod +x" in r.error
    snap = snapshot(paths, "sensor-nox")
    assert snap["signal"]["error"] is True
    assert "chmod +x" in snap["detail"]["message"]


@pytest.mark.timeout(10)
def test_script_without_shebang_runs_under_bash(ctx: Ctx, paths: Paths) -> None:
    add_sensor(paths, "noshebang", 'echo "{\\"signal\\":{\\"n\\":$((1+1))}}"\n', shebang=False)
    r = run(ctx)["sensor-noshebang"]
    assert r.ok, r.error
    assert snapshot(paths, "sensor-noshebang") == {"signal": {"n": 2}}


@pytest.mark.timeout(30)
def test_spawn_failure_is_a_127_error(ctx: Ctx, paths: Paths) -> None:
    add_sensor(paths, "badinterp", "#!/no/such/interpreter\necho '{}'\n", shebang=False)
    r = run(ctx)["sensor-badinterp"]
    assert not r.ok
    snap = snapshot(paths, "sensor-badinterp")
    assert snap["signal"] == {"error": True, "exit_code": 127}
    assert "#!" in snap["detail"]["message"]


@pytest.mark.timeout(10)
def test_grandchild_holding_stdout_does_not_hang_the_beat(ctx: Ctx, paths: Paths) -> None:
    add_sensor(paths, "bg", 'sleep 100 &\necho \'{"signal":{"up":true}}\'\n')
    live = with_env(ctx, LOOOP_SENSOR_TIMEOUT="30")
    t0 = time.monotonic()
    r = run(live)["sensor-bg"]
    assert time.monotonic() - t0 < 3.0
    assert r.ok
    assert snapshot(paths, "sensor-bg") == {"signal": {"up": True}}


# ------------------------------------------------------------------ concurrency


@pytest.mark.timeout(20)
def test_sensors_run_concurrently(ctx: Ctx, paths: Paths) -> None:
    for i in range(10):
        add_sensor(paths, f"slow{i}", f'sleep 0.3\necho \'{{"signal":{{"i":{i}}}}}\'\n')
    t0 = time.monotonic()
    got = run(ctx)
    elapsed = time.monotonic() - t0
    assert elapsed < 1.5  # sequential would be >= 3 s
    assert [r.name for r in got.values()] == [f"sensor-slow{i}" for i in range(10)]
    assert all(r.ok for r in got.values())
    assert snapshot(paths, "sensor-slow7") == {"signal": {"i": 7}}


# ------------------------------------------------------------------ interval cache


def test_interval_header_is_read_from_the_first_lines(tmp_path: Path) -> None:
    s = tmp_path / "s.sh"
    s.write_text("#!/bin/sh\n# fetch the weather\n#  looop:interval=600\necho '{}'\n")
    assert interval_of(s) == 600
    s.write_text("#!/bin/sh\n" + "true\n" * 10 + "# looop:interval=600\n")
    assert interval_of(s) is None
    s.write_text("#!/bin/sh\necho 'looop:interval=600'\n")
    assert interval_of(s) is None


@pytest.mark.timeout(10)
def test_interval_keeps_snapshot_and_edit_bypasses(
    ctx: Ctx, paths: Paths, clock: FixedClock
) -> None:
    script = add_sensor(
        paths,
        "rate",
        "# looop:interval=3600\necho x >> runs.log\n"
        'n=$(wc -l < runs.log)\necho "{\\"signal\\":{\\"n\\":$n}}"\n',
    )
    runs_log = paths.data / "runs.log"
    snap = paths.snapshots / "sensor-rate.json"
    os.utime(script, (1_000_000, 1_000_000))
    assert not run(ctx)["sensor-rate"].cached
    first = snap.read_bytes()
    clock.t = snap.stat().st_mtime + 10

    r = run(ctx)["sensor-rate"]
    assert r.cached and r.ok
    assert r.signal == {"n": 1} and r.to_json() == first  # the kept snapshot, read once
    assert r.interval == 3600
    assert runs_log.read_text().count("x") == 1
    assert snap.read_bytes() == first

    edited = snap.stat().st_mtime + 1
    os.utime(script, (edited, edited))
    assert not run(ctx)["sensor-rate"].cached
    assert runs_log.read_text().count("x") == 2
    assert snapshot(paths, "sensor-rate")["signal"]["n"] == 2

    clock.t = snap.stat().st_mtime + 3601  # the window has passed
    assert not run(ctx)["sensor-rate"].cached
    assert runs_log.read_text().count("x") == 3


@pytest.mark.timeout(10)
def test_cached_failure_stays_a_failure(ctx: Ctx, paths: Paths, clock: FixedClock) -> None:
    script = add_sensor(paths, "flaky", "# looop:interval=600\nexit 2\n")
    os.utime(script, (1_000_000, 1_000_000))
    run(ctx)
    clock.t = (paths.snapshots / "sensor-flaky.json").stat().st_mtime + 1
    r = run(ctx)["sensor-flaky"]
    assert r.cached and not r.ok and r.error is not None
    assert r.failed and r.signal == {"error": True, "exit_code": 2}  # the kept snapshot's


def is_error_snapshot(value: object) -> bool:
    return Reading("", value, True).failed


def test_error_snapshot_shapes() -> None:
    assert is_error_snapshot({"signal": {"error": True, "exit_code": 1}})
    assert is_error_snapshot({"signal": {"error": "oversize", "cap": 1}})
    assert not is_error_snapshot({"signal": {"error": True}})
    assert not is_error_snapshot({"signal": {"error": "disk full"}})
    assert not is_error_snapshot([1])


# ------------------------------------------------------------------ sense(): prune + events


@pytest.mark.timeout(10)
def test_removed_script_snapshot_is_pruned(ctx: Ctx, paths: Paths) -> None:
    add_sensor(paths, "keep", "echo '{}'\n")
    gone = add_sensor(paths, "gone", "echo oops >&2\necho '{}'\n")
    sense(ctx, ctx.knobs())
    assert (paths.snapshots / "sensor-gone.json").exists()
    assert (paths.snapshots / "sensor-gone.err").exists()
    gone.unlink()
    (paths.snapshots / "sys-retired.json").write_text("{}\n")
    (paths.snapshots / "notes.txt").write_text("mine\n")
    sense(ctx, ctx.knobs())
    left = sorted(p.name for p in paths.snapshots.iterdir())
    assert left == [
        "notes.txt",
        "sensor-keep.json",
        "sys-asks.json",
        "sys-claims.json",
        "sys-goals.json",
        "sys-schedules.json",
        "sys-sessions.json",
    ]


@pytest.mark.timeout(10)
def test_sense_summary_lists_failures(ctx: Ctx, paths: Paths) -> None:
    add_sensor(paths, "good", "echo '{}'\n")
    add_sensor(paths, "bad", "exit 1\n")
    readings = sense(ctx, ctx.knobs())
    assert [r.name for r in readings] == [
        "sensor-bad",
        "sensor-good",
        "sys-asks",
        "sys-claims",
        "sys-goals",
        "sys-schedules",
        "sys-sessions",
    ]
    summary = [f for name, f in ctx.events.seen if name == "sense"]
    assert len(summary) == 1
    s = summary[0]
    assert s["level"] == "error"
    total = len(readings)  # two scripts and every system probe
    assert (s["ok"], s["total"], s["failed"]) == (total - 1, total, ["sensor-bad"])
    assert s["msg"] == f"{total - 1}/{total} sensors ok · failed: sensor-bad"
    assert not [n for n, _ in ctx.events.seen if n in ("sense.ok", "sense.fail")]
    events = [json.loads(ln)["event"] for ln in paths.events.read_text().splitlines()]
    assert events.count("sense_done") == 1


@pytest.mark.timeout(10)
def test_sense_all_ok_and_per_sensor_events_in_json_mode(ctx: Ctx, paths: Paths) -> None:
    add_sensor(paths, "good", "echo '{}'\n")
    ctx.events.fmt = "json"
    total = len(sense(ctx, ctx.knobs()))
    assert total == 1 + len(default_probes())
    names = [n for n, _ in ctx.events.seen]
    assert names.count("sense.ok") == total and "sense.fail" not in names
    s = next(f for n, f in ctx.events.seen if n == "sense")
    assert s["level"] == "info" and s["failed"] == []
    assert s["msg"].startswith(f"{total} sensors ok")


# ------------------------------------------------------------------ containment


def _escapee_sensor(paths: Paths, stem: str, tail: str = "") -> None:
    """Leaves one escapee of every kind: setsid, double fork, own group, two generations."""
    py, esc = sys.executable, FIXTURES / "escape.py"
    add_sensor(
        paths,
        stem,
        "setsid sleep 1000 >/dev/null 2>&1 </dev/null &\n"
        f'"{py}" "{esc}" doublefork\n"{py}" "{esc}" pgrp\n"{py}" "{esc}" chain\n'
        f'{tail}echo \'{{"signal":{{"ok":true}}}}\'\n',
    )


@pytest.mark.timeout(60)
def test_nothing_a_sensor_starts_outlives_it_beat_after_beat(
    ctx: Ctx, paths: Paths, zombies: Zombies
) -> None:
    _escapee_sensor(paths, "leaky")
    add_sensor(paths, "plain", "echo '{}'\n")
    mine = str(paths.data)
    try:
        for _ in range(3):
            got = run(ctx)
            assert got["sensor-leaky"].ok and got["sensor-plain"].ok
            assert tagged("LOOOP_DATA_DIR", mine) == []  # gone when the beat returns: no pile-up
            assert zombies() == []
        err = (paths.snapshots / "sensor-leaky.err").read_text()
        assert "background process(es) the script left behind were killed" in err
        assert not (paths.snapshots / "sensor-plain.err").exists()
    finally:
        kill_all(tagged("LOOOP_DATA_DIR", mine))


@pytest.mark.timeout(60)
def test_a_timed_out_sensor_takes_its_escapees_with_it(
    ctx: Ctx, paths: Paths, zombies: Zombies
) -> None:
    _escapee_sensor(paths, "stuck", tail="sleep 1000\n")
    mine = str(paths.data)
    try:
        r = run(with_env(ctx, LOOOP_SENSOR_TIMEOUT="2"))["sensor-stuck"]
        assert not r.ok and "timed out" in (r.error or "")
        assert tagged("LOOOP_DATA_DIR", mine) == []
        assert zombies() == []
    finally:
        kill_all(tagged("LOOOP_DATA_DIR", mine))


@pytest.mark.timeout(30)
def test_the_beat_is_no_subreaper_once_it_is_over(ctx: Ctx, paths: Paths) -> None:
    """Worker supervisors started after the beat must be adopted by init, never by us."""
    _escapee_sensor(paths, "leaky")
    assert procs._prctl(procs.PR_GET_CHILD_SUBREAPER, 0) == 0
    try:
        run(ctx)
        assert procs._prctl(procs.PR_GET_CHILD_SUBREAPER, 0) == 0
        orphan = subprocess.run(
            [sys.executable, str(FIXTURES / "escape.py"), "doublefork"],
            env={**ctx.env, "LOOOP_TEST_ORPHAN": str(paths.data)},
            timeout=10,
        )
        assert orphan.returncode == 0
        (pid,) = tagged("LOOOP_TEST_ORPHAN", str(paths.data))
        assert pid not in procwatch_children()
    finally:
        kill_all(tagged("LOOOP_TEST_ORPHAN", str(paths.data)))
        kill_all(tagged("LOOOP_DATA_DIR", str(paths.data)))


# ------------------------------------------------------------------ open-file budget

_LOW_LIMIT_BEAT = """
import json, os, resource, sys, time
from pathlib import Path
from looop.home.clock import SystemClock
from looop.core.context import Ctx
from looop.core.events import Emitter
from looop.home.paths import Paths
from looop.sense.sensors import run_user_sensors

paths = Paths.at(Path(sys.argv[1]))
clock = SystemClock()
env = {"PATH": os.environ["PATH"], "LOOOP_SENSOR_TIMEOUT": sys.argv[2]}
ctx = Ctx(paths=paths, clock=clock, env=env, events=Emitter(clock=clock, events_path=None))
knobs = ctx.knobs()
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if sys.argv[3] == "full":  # every descriptor but three taken by someone else
    held = []
    try:
        while True:
            held.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        pass
    for fd in held[-3:]:
        os.close(fd)
else:
    resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[3]), hard))
t0 = time.monotonic()
readings = run_user_sensors(ctx, knobs)
took = time.monotonic() - t0
print(json.dumps({"took": took, "readings": [[r.name, r.ok, r.error] for r in readings]}))
"""


def _low_limit_beat(paths: Paths, timeout: int, limit: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", _LOW_LIMIT_BEAT, str(paths.data), str(timeout), limit],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out: dict[str, Any] = json.loads(proc.stdout)
    return out


@pytest.mark.timeout(120)
def test_under_ulimit_64_every_healthy_sensor_reads_ok(paths: Paths) -> None:
    for i in range(60):
        add_sensor(paths, f"s{i:02d}", f'sleep 0.5\necho \'{{"signal":{{"i":{i}}}}}\'\n')
    got = _low_limit_beat(paths, timeout=2, limit="64")
    bad = [(n, err) for n, ok, err in got["readings"] if not ok]
    assert bad == []
    assert len(got["readings"]) == 60
    assert snapshot(paths, "sensor-s59") == {"signal": {"i": 59}}
    # They queued (60 at once cannot fit in 64 files), yet none timed out at 2 s: each
    # sensor's timeout counts from its own start.
    assert got["took"] > 2.0


@pytest.mark.timeout(60)
def test_no_files_left_at_all_names_the_limit_not_the_script(paths: Paths) -> None:
    add_sensor(paths, "fine", "echo '{}'\n")
    got = _low_limit_beat(paths, timeout=10, limit="full")
    ((name, ok, error),) = got["readings"]
    assert (name, ok) == ("sensor-fine", False)
    assert "ulimit -n" in error and "#!" not in error
    snap = snapshot(paths, "sensor-fine")
    assert "ulimit -n" in snap["detail"]["message"]


@pytest.mark.timeout(30)
def test_an_interpreter_that_is_not_executable_is_named(ctx: Ctx, paths: Paths) -> None:
    notexec = paths.data / "interp"
    notexec.write_text("not a program\n")
    add_sensor(paths, "badperm", f"#!{notexec}\necho '{{}}'\n", shebang=False)
    r = run(ctx)["sensor-badperm"]
    assert not r.ok
    assert "Permission denied" in (r.error or "") and "ulimit" not in (r.error or "")
    assert snapshot(paths, "sensor-badperm")["signal"] == {"error": True, "exit_code": 127}


@pytest.mark.timeout(30)
def test_without_prctl_sensors_still_run_and_say_so_once(
    ctx: Ctx, paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(procs, "_prctl", lambda option, arg: None)  # as on a non-Linux kernel
    add_sensor(paths, "plain", "echo '{}'\n")
    assert run(ctx)["sensor-plain"].ok
    assert run(ctx)["sensor-plain"].ok
    warned = [f for name, f in ctx.events.seen if name == "sense.uncontained"]
    assert len(warned) == 1 and warned[0]["level"] == "warn"
    assert "may outlive them" in warned[0]["msg"]


# ------------------------------------------------------------------ a beat that changes nothing


@pytest.mark.timeout(20)
def test_sensors_start_through_posix_spawn_not_one_popen_each(
    ctx: Ctx, paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[str] = []
    real = os.posix_spawn

    def counting(path: str, *args: Any, **kwargs: Any) -> int:
        started.append(os.path.basename(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "posix_spawn", counting)
    # posix_spawn is used only while no other thread runs (the spawn changes the process's
    # cwd for a moment); a thread another in-process test left in this xdist worker must not
    # decide what this test sees
    import threading

    monkeypatch.setattr(threading, "active_count", lambda: 1)
    for i in range(5):
        add_sensor(paths, f"s{i}", f'echo \'{{"signal":{{"i":{i}}}}}\'\n')
    got = run(ctx)
    assert all(r.ok for r in got.values())
    assert sorted(started) == [f"s{i}.sh" for i in range(5)]
    assert snapshot(paths, "sensor-s4") == {"signal": {"i": 4}}


@pytest.mark.timeout(20)
def test_an_unchanged_reading_leaves_its_snapshot_alone_unless_an_interval_reads_its_age(
    ctx: Ctx, paths: Paths, clock: FixedClock
) -> None:
    add_sensor(paths, "still", 'echo \'{"signal":{"same":1}}\'\n')
    timed = add_sensor(paths, "timed", '# looop:interval=60\necho \'{"signal":{"same":2}}\'\n')
    os.utime(timed, (1_000_000, 1_000_000))
    run(ctx)
    still, every = paths.snapshots / "sensor-still.json", paths.snapshots / "sensor-timed.json"
    os.utime(every, ns=(1_000_000_000_000_000, 1_000_000_000_000_000))  # long ago
    before = os.stat(still)
    got = run(ctx)
    after = os.stat(still)
    assert got["sensor-still"].ok and not got["sensor-still"].cached
    # rewritten neither by rename nor in place, nor even touched
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (
        before.st_ino,
        before.st_mtime_ns,
        before.st_size,
    )
    # the interval sensor ran again (its window had passed) with the same output: only its
    # age moves, so the next beat within the window keeps it
    assert not got["sensor-timed"].cached
    assert os.stat(every).st_mtime_ns > 1_000_000_000_000_000
    clock.t = os.stat(every).st_mtime + 5
    assert run(ctx)["sensor-timed"].cached


def test_pruning_removes_only_our_orphaned_files(paths: Paths) -> None:
    from looop.sense import prune_snapshots

    paths.snapshots.mkdir(parents=True)
    for name in (
        "sensor-gone.json",
        "sensor-gone.err",
        "sys-old.json",
        "sensor-keep.json",
        "sensor-keep.err",
        ".json",
        "notes.json",
        "sensor-x.json.bak",
        "sys-old.err",
        "sensor-a.b.json",
    ):
        (paths.snapshots / name).write_text("{}")
    (paths.snapshots / "sensor-dir.json").mkdir()
    gone = prune_snapshots(paths, ["sensor-keep", "sys-goals"])
    assert gone == ["sensor-a.b.json", "sensor-gone.err", "sensor-gone.json", "sys-old.json"]
    left = sorted(p.name for p in paths.snapshots.iterdir())
    assert left == [
        ".json",
        "notes.json",
        "sensor-dir.json",
        "sensor-keep.err",
        "sensor-keep.json",
        "sensor-x.json.bak",
        "sys-old.err",
    ]


@pytest.mark.timeout(20)
def test_the_beats_world_from_its_readings_is_the_world_on_disk(ctx: Ctx, paths: Paths) -> None:
    """A beat hashes the snapshots its readings just left in place without reading them back:
    that world must be the one a fresh read of the data dir gives (what `state --json` and the
    next beat see), for a changed, an unchanged, a failing, an interval and a non-JSON sensor."""
    from looop.loop.world import read_world

    add_sensor(paths, "same", 'echo \'{"signal": {"n": 1}}\'\n')
    moves = add_sensor(paths, "moves", 'echo \'{"signal": {"n": 1}}\'\n')
    add_sensor(paths, "bad", "echo half; exit 3\n")
    add_sensor(paths, "raw", "echo not json\n")
    add_sensor(paths, "slow", '# looop:interval=3600\necho \'{"signal": {"at": 1}}\'\n')
    for step in range(2):
        readings = sense(ctx, ctx.knobs())
        known = {f"{r.name}.json": r.body for r in readings if r.body is not None}
        assert "sensor-same.json" in known and "sys-goals.json" in known
        assert read_world(paths, known=known) == read_world(paths), step
        for name, body in known.items():
            assert (paths.snapshots / name).read_bytes() == body, name
        moves.write_text('#!/bin/sh\necho \'{"signal": {"n": 2}}\'\n')
    assert read_world(paths).items["snap:sensor-moves"] == '{"n":2}'


@pytest.mark.timeout(10)
def test_interval_cache_is_dropped_when_a_watched_path_changed(
    ctx: Ctx, paths: Paths, clock: FixedClock
) -> None:
    """A woken beat reads the change that woke it: a sensor whose `# looop:watch=PATH` changed
    since its snapshot runs again, inside its interval; a neighbour's change keeps the cache."""
    script = add_sensor(
        paths,
        "inbox",
        "# looop:interval=3600\n# looop:watch=inbox.txt\n# looop:watch=mail\n"
        'printf \'{"signal":{"inbox":"%s","mail":"%s"}}\' '
        '"$(cat inbox.txt)" "$(ls mail | wc -l)"\n',
    )
    os.utime(script, (1_000_000, 1_000_000))
    (paths.data / "mail").mkdir()
    (paths.data / "mail" / "m1").write_text("hi\n")
    (paths.data / "inbox.txt").write_text("a\n")
    assert not run(ctx)["sensor-inbox"].cached
    snap = paths.snapshots / "sensor-inbox.json"
    clock.t = snap.stat().st_mtime + 10
    (paths.data / "neighbour.txt").write_text("not watched\n")
    assert run(ctx)["sensor-inbox"].cached

    (paths.data / "inbox.txt").write_text("b\n")
    r = run(ctx)["sensor-inbox"]
    assert not r.cached and r.signal == {"inbox": "b", "mail": "1"}
    assert run(ctx)["sensor-inbox"].cached  # read once: cached again until the next change

    (paths.data / "mail" / "m1").write_text("edited in place\n")  # a watched folder's entry
    assert not run(ctx)["sensor-inbox"].cached
    (paths.data / "mail" / "m2").write_text("new\n")
    r = run(ctx)["sensor-inbox"]
    assert not r.cached and r.signal == {"inbox": "b", "mail": "2"}
