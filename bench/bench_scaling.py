"""Curves, not points: how the cost of the common verbs grows with what a home holds.

Each curve is measured at three sizes in one run, every size interleaved round by round with
its same-run baseline, and reported with its growth per item (the median's slope from the
smallest to the largest size), so a regression in the curve shows, not only at one point:

- a skip beat (`looop tick`, world unchanged) vs 10/100/1000 sensors; baseline: bash running
  the same scripts;
- `looop ls` and `looop status` vs 1/10/100 live workers (`cat`), baseline `python -c pass`
  (100 finished ones beside one live are bench_busy's);
- `/api/v1/state` (built fresh, not from its per-change cache) vs 1/10/100 workers, in the
  web's own process; baseline: the same read on one worker;
- the pulse's own memory over 1,000 skip beats, in process: its live Python heap (allocated
  blocks after a full collection: what a leak grows) and its RSS; baseline: both after the
  first 500 beats. RSS moves in steps of pymalloc's arenas (1 MiB on 3.11): an arena freed and
  another filled steps it ~0.5 MB once, at a beat that depends on the sizes of the run's files,
  with no live object more.
- the idle fleet's skip beat, in process: 30 live workers (fake folders, their locks held by
  the bench) with 0 vs 300 finished ones kept; baseline: the beat with none kept (issue 68:
  flat in kept workers).

- `looop ls`, `status` and `needs` at 1 vs 300 live workers (fake folders copied from a real
  worker's, their locks held by the bench: no supervisors running), target 2x; and the skip
  beat, in process, with 300 finished workers kept vs none, target 1.1x (`python
  bench/bench_scaling.py verbs kept` runs these rows alone).

The ledger's curve (`status` vs 1k/10k/100k rows today) is bench_busy's."""

from __future__ import annotations

import fcntl
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_busy as busy
import bench_sensors as sensors

ROUNDS = 15  # as bench_busy: nine left a row's median to one noisy moment
SENSORS = (10, 100, 1000)
FLEET = (1, 10, 100)
BEATS = 1000
GROWTH_US = {"worker": 500.0}  # per item, at most: a curve, not a cliff
SENSOR_GROWTH = 1.5  # a sensor is a process: ours per sensor vs bash's per sensor
WARMUP_BEATS = 500  # where a beat's memory settles (pymalloc arenas, caches filled)
MEMORY_KB = 1024  # RSS growth over the next 1,000 beats: one arena, never two
BLOCKS = 1000  # live blocks more after 1,000 beats: one a beat would be a leak


def _curve(
    name: str, unit: str, sizes: tuple[int, ...], ours: dict[int, list[float]], base: list[float]
) -> list[dict[str, object]]:
    """One row per size (median ratio to the baseline) and the growth per item in the last."""
    bmed = statistics.median(base)
    rows: list[dict[str, object]] = []
    for n in sizes:
        med = statistics.median(ours[n])
        rows.append(
            {
                "name": f"{name}, {n} {unit}{'s' if n != 1 else ''}",
                "value": round(med * 1000, 2),
                "min": round(min(ours[n]) * 1000, 2),
                "max": round(max(ours[n]) * 1000, 2),
                "unit": "ms",
                "baseline": round(bmed * 1000, 2),
                "ratio": round(med / bmed, 2),
                "target": "curve",
                "ok": True,
            }
        )
    per = _growth(sizes, ours)
    rows[-1]["note"] = (
        f"scaling {name}: growth {per:+.1f} µs per {unit} from {sizes[0]} to {sizes[-1]}"
    )
    if unit in GROWTH_US:
        rows[-1]["target"] = f"growth <= {GROWTH_US[unit]:g} µs/{unit}"
        rows[-1]["ok"] = per <= GROWTH_US[unit]
    return rows


def _growth(sizes: tuple[int, ...], times: dict[int, list[float]]) -> float:
    """µs per item from the smallest size's median to the largest's."""
    lo, hi = sizes[0], sizes[-1]
    return (statistics.median(times[hi]) - statistics.median(times[lo])) / (hi - lo) * 1e6


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _beats(root: Path) -> list[dict[str, object]]:
    """`looop tick` on an unchanged world vs sensors, bash running them as the baseline."""
    ours: dict[int, list[float]] = {n: [] for n in SENSORS}
    base: dict[int, list[float]] = {n: [] for n in SENSORS}
    runs: dict[int, tuple[Callable[[], None], Callable[[], None]]] = {}
    homes: list[Path] = []
    for n in SENSORS:
        data = sensors._data(root / f"s{n}", n)
        homes.append(data)
        sensors._skip_world(data)
        scratch = root / f"s{n}-bash"
        scratch.mkdir()
        runs[n] = (sensors._cli(data), sensors._bash(data, scratch))
    for r in range(ROUNDS + 1):
        for n, (mine, bash) in runs.items():
            pair = [(ours[n], mine), (base[n], bash)]
            for sink, fn in pair if r % 2 else reversed(pair):
                took = _timed(fn)
                if r:  # the first round warms the page cache
                    sink.append(took)
    rows = _curve("skip beat vs sensors", "sensor", SENSORS, ours, base[SENSORS[-1]])
    for row, n in zip(rows, SENSORS, strict=True):  # each size against bash on the same scripts
        b = statistics.median(base[n])
        value = row["value"]
        assert isinstance(value, float)
        row["baseline"], row["ratio"] = round(b * 1000, 2), round(value / 1000 / b, 2)
    ours_us, bash_us = _growth(SENSORS, ours), _growth(SENSORS, base)
    rows[-1]["note"] = (
        f"scaling skip beat: growth {ours_us:+.0f} µs per sensor, bash {bash_us:+.0f} µs "
        f"(ratio {ours_us / bash_us:.2f}) from {SENSORS[0]} to {SENSORS[-1]}"
    )
    rows[-1]["target"] = f"growth <= {SENSOR_GROWTH}x bash's"
    rows[-1]["ok"] = ours_us <= SENSOR_GROWTH * bash_us
    return rows


def _fleet_home(root: Path, live: int) -> dict[str, str]:
    from looop.sessions.spawner import spawn

    env = busy._home(root)
    data = Path(env["LOOOP_DATA_DIR"])
    for i in range(live):
        spawn(data, f"w{i}", ["cat"], cwd=data, env=env)
    return env


def _verbs(root: Path) -> list[dict[str, object]]:
    """`ls` and `status` vs live workers; `python -c pass` beside."""
    bin_ = str(Path(sys.executable).parent / "looop")
    homes = {n: _fleet_home(root / f"live{n}", n) for n in FLEET}
    rows: list[dict[str, object]] = []
    try:
        for verb in ("ls", "status"):
            cmds = {str(n): [bin_, verb] for n in homes}
            envs = {str(n): env for n, env in homes.items()}
            ours, base = busy._pairs(cmds, envs, ROUNDS)
            live = {n: ours[str(n)] for n in FLEET}
            every = [x for n in FLEET for x in base[str(n)]]
            rows += _curve(f"looop {verb} vs live workers", "worker", FLEET, live, every)
    finally:
        for env in homes.values():
            subprocess.run([bin_, "down"], env=env, capture_output=True, timeout=120, check=False)
    return rows


BIG_FLEET = 300  # issue 68: `ls`, `status` and `needs` at 300 live workers within 2x of 1
VERB_RATIO = 2.0
KEPT_RATIO = 1.1  # a beat with 300 finished workers kept vs none


def _templates(root: Path) -> tuple[Path, Path]:
    """A live `cat` worker's folder (copied while it runs) and a finished `true` one's."""
    from looop.home.clock import SystemClock
    from looop.sessions.client import kill, wait
    from looop.sessions.spawner import spawn

    env = busy._home(root)
    data = Path(env["LOOOP_DATA_DIR"])
    spawn(data, "done", ["true"], cwd=data, env=env)
    wait(data, "done", 30, SystemClock())
    spawn(data, "live", ["cat"], cwd=data, env=env)
    live = root / "live"
    for _ in range(500):  # its first status and log marks, written as it starts
        if (data / "sessions/live/log/output.pos").exists():
            break
        time.sleep(0.01)
    shutil.copytree(data / "sessions/live", live, symlinks=True)
    kill(data, "live")
    wait(data, "live", 30, SystemClock())
    return live, data / "sessions/done"


def _fake(data: Path, sid: str, template: Path, fds: list[int] | None) -> None:
    """A worker's folder as its supervisor leaves it, copied from `template` under `sid`;
    `fds`: hold its lock there (a live worker: no supervisor, so no socket either)."""
    sdir = data / "sessions" / sid
    shutil.copytree(template, sdir, symlinks=True)
    meta = json.loads((sdir / "meta.json").read_text())
    meta.update(id=sid, cgroup=str(meta.get("cgroup", "")).rpartition("-")[0] + "-" + sid)
    (sdir / "meta.json").write_text(json.dumps(meta, separators=(",", ":"), sort_keys=True))
    log = sdir / "log"  # output.pos names the log's inode: the copy's
    (log / "output.pos").write_text(f"{os.stat(log / 'output.log').st_ino}:0\n")
    if fds is not None:
        fd = os.open(sdir / "lock", os.O_RDWR | os.O_CLOEXEC)
        fcntl.flock(fd, fcntl.LOCK_EX)
        fds.append(fd)


def _fleet_verbs(root: Path) -> list[dict[str, object]]:
    """`ls`, `status` and `needs` at 1 and 300 live workers (fake folders, their locks held
    here), interleaved in one run; ratio = 300's median / 1's."""
    live, _done = _templates(root / "tmpl")
    bin_ = str(Path(sys.executable).parent / "looop")
    fds: list[int] = []
    envs: dict[str, dict[str, str]] = {}
    for n in (1, BIG_FLEET):
        envs[str(n)] = busy._home(root / f"fleet{n}")
        data = Path(envs[str(n)]["LOOOP_DATA_DIR"])
        (data / "sessions").mkdir(exist_ok=True)
        for i in range(n):
            _fake(data, f"w{i}", live, fds)
    rows: list[dict[str, object]] = []
    try:
        for verb in ("ls", "status", "needs"):
            ours, _ = busy._pairs({k: [bin_, verb] for k in envs}, envs, ROUNDS)
            row = busy._row(
                f"looop {verb}, {BIG_FLEET} live workers vs 1", ours["300"], ours["1"], VERB_RATIO
            )
            rows.append(
                row
                | {
                    "note": f"scaling verbs: {verb} at 1 live worker "
                    f"{_spread(ours['1'])}, at {BIG_FLEET} {_spread(ours['300'])} ms"
                }
            )
    finally:
        for fd in fds:
            os.close(fd)
    return rows


def _spread(times: list[float]) -> str:
    """min/median/max in ms."""
    return "/".join(f"{x * 1000:.1f}" for x in (min(times), statistics.median(times), max(times)))


def _kept(root: Path) -> list[dict[str, object]]:
    """The pulse's skip beat (in this process) with 300 finished workers kept vs none."""
    from looop.loop.pulse import Pulse

    _live, done = _templates(root / "tmpl-kept")
    beats: dict[int, Callable[[], None]] = {}
    times: dict[int, list[float]] = {0: [], BIG_FLEET: []}
    with open(os.devnull, "w") as sink:
        for k in times:
            data = sensors._data(root / f"kept{k}", 1)
            (data / "sessions").mkdir()
            for i in range(k):
                _fake(data, f"d{i}", done, None)
            sensors._skip_world(data)
            _ended_long_ago(data)
            beats[k] = sensors._pulse_beat(Pulse(sensors._pulse_ctx(data, sink)))
        for r in range(ROUNDS * 4 + 1):
            for k in times if r % 2 else reversed(times):
                took = _timed(beats[k])
                if r:
                    times[k].append(took)
    row = busy._row(f"skip beat, {BIG_FLEET} finished workers kept vs none",
                    times[BIG_FLEET], times[0], KEPT_RATIO)  # fmt: skip
    row["note"] = (f"scaling kept: beat with none kept {_spread(times[0])}, with {BIG_FLEET} "
                   f"{_spread(times[BIG_FLEET])} ms")  # fmt: skip
    return [row]


def _ended_long_ago(data: Path) -> None:
    """Every file of the home stamped an hour back, as a pulse finds workers that ended long
    ago (a folder changed in the last seconds is read again each beat: store.SETTLED_S)."""
    then = time.time() - 3600
    for top, dirs, files in os.walk(data):
        for name in dirs + files:
            os.utime(os.path.join(top, name), (then, then), follow_symlinks=False)


def _state(root: Path) -> list[dict[str, object]]:
    """The web's state read, built fresh each time (its cache is per change), vs fleet size."""
    from looop.core.context import ctx_for
    from looop.home.clock import SystemClock
    from looop.web import reads

    homes = {n: _fleet_home(root / f"web{n}", n) for n in FLEET}
    ours: dict[int, list[float]] = {n: [] for n in FLEET}
    try:
        ctxs = {n: ctx_for(env, SystemClock(), events_to=None) for n, env in homes.items()}
        for r in range(ROUNDS * 5 + 1):
            for n, ctx in ctxs.items():
                took = _timed(lambda ctx=ctx: reads.state(ctx))  # type: ignore[misc]
                if r:
                    ours[n].append(took)
    finally:
        bin_ = str(Path(sys.executable).parent / "looop")
        for env in homes.values():
            subprocess.run([bin_, "down"], env=env, capture_output=True, timeout=120, check=False)
    return _curve("/api/v1/state (built fresh) vs workers", "worker", FLEET, ours, ours[1])


IDLE_LIVE, IDLE_KEPT = 30, 300  # issue 68: the idle fleet, and the finished workers it keeps
KEPT_GROWTH = 1.1  # the beat with 300 kept vs none: flat


def _worker(data: Path, sid: str, state: str, fds: list[int] | None) -> None:
    """A worker's folder as the beat reads it: meta, status, lock (`fds`: held here, a live
    one's supervisor) or the `ended` mark of a finished one."""
    sdir = data / "sessions" / sid
    sdir.mkdir(parents=True)
    meta = {"v": 1, "id": sid, "cmd": ["sleep", "inf"], "started_at": "2026-01-01T00:00:00.000Z"}
    (sdir / "meta.json").write_text(json.dumps(meta))
    status = {"v": 1, "state": state, "last_change": meta["started_at"]}
    (sdir / "status.json").write_text(
        json.dumps(status | ({"exit_code": 0} if fds is None else {}))
    )
    fd = os.open(sdir / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC)
    if fds is None:
        os.close(fd)
        (sdir / "ended").touch()
    else:
        fcntl.flock(fd, fcntl.LOCK_EX)
        fds.append(fd)


def _idle_fleet(root: Path) -> list[dict[str, object]]:
    """The pulse's skip beat over 30 live workers, with 300 finished ones kept vs none."""
    from looop.loop.pulse import Pulse

    fds: list[int] = []
    beats: dict[int, Callable[[], None]] = {}
    times: dict[int, list[float]] = {0: [], IDLE_KEPT: []}
    try:
        with open(os.devnull, "w") as sink:
            for k in times:
                data = sensors._data(root / f"idle{k}", 1)
                (data / "resume").mkdir()  # workers started by looop: the meter, usage windows
                for i in range(IDLE_LIVE):
                    _worker(data, f"w{i}", "running", fds)
                for i in range(k):
                    _worker(data, f"d{i}", "exited", None)
                sensors._skip_world(data)
                _ended_long_ago(data)  # as a pulse finds them: not ended within store.SETTLED_S
                beats[k] = sensors._pulse_beat(Pulse(sensors._pulse_ctx(data, sink)))
            for r in range(ROUNDS * 4 + 1):
                for k in times if r % 2 else reversed(times):
                    took = _timed(beats[k])
                    if r:  # the first round warms the page cache
                        times[k].append(took)
    finally:
        for fd in fds:
            os.close(fd)
    spread = {k: "/".join(f"{x * 1000:.1f}" for x in (min(t), statistics.median(t), max(t)))
              for k, t in times.items()}  # fmt: skip
    name = f"idle fleet skip beat ({IDLE_LIVE} live), {IDLE_KEPT} finished kept vs none"
    row = busy._row(name, times[IDLE_KEPT], times[0], KEPT_GROWTH)
    row["note"] = (
        f"scaling idle fleet: beat min/median/max with none kept {spread[0]} ms, with "
        f"{IDLE_KEPT} kept {spread[IDLE_KEPT]} ms: {_growth((0, IDLE_KEPT), times):+.0f} µs "
        "per kept worker"
    )
    return [row]


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _live_blocks() -> int:
    """Python's allocated blocks once a full collection has run: it also empties the free
    lists (tuples, floats, dicts kept for reuse), which fill over the first thousands of beats
    and are no leak (~1 block a beat before their bounds, 1,000 beats measured both ways)."""
    gc.collect()
    return sys.getallocatedblocks()


def _memory(root: Path) -> list[dict[str, object]]:
    """The pulse's beat, 1,000 times on an unchanged world of 10 sensors, in this process."""
    from looop.loop.pulse import Pulse

    data = sensors._data(root / "mem", 10)
    sensors._skip_world(data)
    with open(os.devnull, "w") as sink:
        pulse = Pulse(sensors._pulse_ctx(data, sink))
        beat = sensors._pulse_beat(pulse)
        for _ in range(WARMUP_BEATS):
            beat()
        plateau, blocks0 = _rss_kb(), _live_blocks()
        rss, blocks = [], []
        for i in range(BEATS):
            beat()
            if i % 100 == 99:
                rss.append(_rss_kb())
                blocks.append(_live_blocks())
    grew, more = rss[-1] - plateau, blocks[-1] - blocks0
    name = f"pulse memory over {BEATS} skip beats (10 sensors)"
    return [
        {
            "name": f"{name}, live Python blocks",
            "value": more,
            "min": min(blocks) - blocks0,
            "max": max(blocks) - blocks0,
            "unit": "blocks",
            "baseline": blocks0,
            "ratio": round(blocks[-1] / blocks0, 3),
            "target": f"growth <= {BLOCKS} blocks",
            "ok": more <= BLOCKS,
            "note": f"scaling memory blocks: after beat {WARMUP_BEATS} {blocks0}, then every 100 "
            "beats " + ", ".join(str(b) for b in blocks),
        },
        {
            "name": f"{name}, RSS",
            "value": grew,
            "min": min(rss) - plateau,
            "max": max(rss) - plateau,
            "unit": "kB",
            "baseline": plateau,
            "ratio": round(rss[-1] / plateau, 3),
            "target": f"growth <= {MEMORY_KB} kB",
            "ok": grew <= MEMORY_KB,
            "note": f"scaling memory RSS: after beat {WARMUP_BEATS} {plateau} kB, then every 100 "
            "beats " + ", ".join(str(s) for s in rss),
        },
    ]


def run() -> list[dict[str, object]]:
    import looop

    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(Path(looop.__file__).parent)], check=True
    )
    with tempfile.TemporaryDirectory(prefix="looop-scaling-") as tmp:
        root = Path(tmp)
        rows = _beats(root)
        rows += _idle_fleet(root)
        rows += _verbs(root)
        rows += _state(root)
        rows += _memory(root)
        rows += _fleet_verbs(root)
        rows += _kept(root)
    rows[0]["note"] = (
        f"scaling: {ROUNDS} interleaved rounds per size after one warm-up round, the order "
        "flipping each round; ratio = median / the baseline's median; growth = (median at the "
        "largest size - median at the smallest) / the sizes' difference. Skip beat: the same "
        "trivial sensor copied N times, baseline bash running them (bench_sensors' script). "
        "ls/status: `cat` workers, baseline `python -c pass` (every size's rounds). State: "
        "web/reads.state in process, baseline its own 1-worker median"
    )
    return rows


if __name__ == "__main__":  # `python bench/bench_scaling.py kept idle`: those rows alone
    picked = {"verbs": _fleet_verbs, "kept": _kept, "memory": _memory, "idle": _idle_fleet}
    with tempfile.TemporaryDirectory(prefix="looop-scaling-") as tmp:
        for name in sys.argv[1:] or list(picked):
            for row in picked[name](Path(tmp) / name):
                print(row)
