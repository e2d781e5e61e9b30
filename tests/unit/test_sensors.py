"""User sensors: concurrency, timeouts, caps, normalisation, interval cache, pruning."""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from looop.core.clock import FixedClock
from looop.core.context import Ctx
from looop.core.paths import Paths
from looop.sense import sense
from looop.sense.probes import default_probes
from looop.sense.sensors import Reading, interval_of, is_error_snapshot, run_user_sensors


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
