"""A worker's bounds with real workers, started and read as a user does (`looop worker start`,
`looop tick`, `looop ls`): a process flood stops at worker_max_pids while a neighbour and the
beat go on, a memory hog is killed at worker_max_memory and named, a worker filling its
report past worker_max_disk is paused whole and named, and a pause reaches a process that
left the worker's session. Skipped where no cgroup can be made (the bounds say so: doctor)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from looop.core import cgroup
from looop.sessions.hold import pause
from tests.helpers import outside_env, until, wait_until

pytestmark = pytest.mark.timeout(120)

LOOOP = [sys.executable, "-m", "looop"]


class Home:
    """A data dir whose decider only says noop, and `looop` run against it."""

    def __init__(self, tmp: Path, **env: str) -> None:
        self.data = tmp / "data"
        self.data.mkdir()
        script = tmp / "script.json"
        script.write_text(json.dumps([{"decision": {"action": "noop", "reason": "calm"}}] * 9))
        tick = f"{sys.executable} -m looop.demo.runner --script {script}"
        cfg = {"default": "s", "runners": {"s": {"tick": tick, "worker": "cat"}}}
        (self.data / "config.json").write_text(json.dumps({**cfg, "max_daily_usd": 0}))
        self.env = outside_env(LOOOP_DATA_DIR=str(self.data), **env)

    def looop(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*LOOOP, *args], env=self.env, capture_output=True, text=True, timeout=60
        )

    def start(self, wid: str, script: str) -> None:
        path = self.data.parent / f"{wid}.sh"
        path.write_text(script)
        r = self.looop(
            "worker", "start", wid, "go", "--command", f"bash {path} # {{{{prompt_file}}}}"
        )
        assert r.returncode == 0, r.stderr

    def row(self, wid: str) -> dict[str, object]:
        r = self.looop("ls", "--all", "--json")
        assert r.returncode == 0, r.stderr
        return next(x for x in json.loads(r.stdout) if x["id"] == wid)

    def events(self) -> str:
        path = self.data / "events.jsonl"
        return path.read_text() if path.exists() else ""


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Home]:
    probe = cgroup.make(f"probe-{os.getpid()}")
    if probe is None:
        pytest.skip("no cgroup can be made here: the bounds are not enforced (doctor says so)")
    probe.remove()
    h = Home(tmp_path, LOOOP_WORKER_MAX_PIDS="50", LOOOP_WORKER_MAX_MEMORY=str(96 << 20))
    yield h
    # names no other test's worker has: cgroups are named by worker, tests run side by side
    for wid in ("pidflood", "forks", "calm", "hog", "filler", "counter"):
        h.looop("kill", wid)


def _count(path: Path) -> int:
    try:
        return int(path.read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        return -1


FLOOD = """import os, sys, time
n = 0
for _ in range(300):  # bounded (safe where no bound holds): each start counted
    try:
        pid = os.fork()
    except OSError:
        continue
    if pid == 0:
        time.sleep(300)
        os._exit(0)
    n += 1
open(sys.argv[1], "w").write(f"{n} started\\n")
time.sleep(300)
"""


def test_a_process_flood_stops_at_the_bound_and_a_neighbour_and_the_beat_go_on(
    home: Home,
) -> None:
    script = home.data.parent / "flood.py"
    script.write_text(FLOOD)
    said = home.data.parent / "flood.n"
    home.start("calm", "sleep 300\n")
    home.start("pidflood", f"exec {sys.executable} {script} {said}\n")
    wait_until(lambda: said.exists() and "started" in said.read_text(), 60, "the flood to end")
    started = int(said.read_text().split()[0])
    flood = [p for p in _procs() if _in(p, "pidflood")]
    assert started < 50 and len(flood) <= 50, f"{started} started, {len(flood)} in the worker"
    assert home.row("calm")["state"] == "running"
    r = home.looop("tick")  # the beat forks its sensors and decider: not starved
    assert r.returncode == 0, r.stderr


def _procs() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _in(pid: int, wid: str) -> bool:
    """Whether a process belongs to worker `wid`'s run: its cgroup is that worker's."""
    try:
        text = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return False
    return any(line.endswith(f"-{wid}") for line in text.splitlines())


def test_a_memory_hog_is_killed_at_the_bound_and_ls_names_it(home: Home) -> None:
    hog = "import time\nx = bytearray(512 << 20)\nx[::4096] = b'1' * len(x[::4096])\n"
    hog += "time.sleep(300)\n"
    (home.data.parent / "hog.py").write_text(hog)
    home.start("hog", f"exec {sys.executable} {home.data.parent / 'hog.py'}\n")
    wait_until(lambda: home.row("hog")["state"] != "running", 60, "the hog to end")
    row = home.row("hog")
    assert row["health"] == "hit its memory limit", row
    assert row["limit"] == "memory"


def test_without_a_cgroup_a_memory_hog_is_sampled_killed_and_named(tmp_path: Path) -> None:
    """Where no cgroup holds memory (a user who is not root), the supervisor's sample does."""
    h = Home(tmp_path, LOOOP_NO_CGROUP="1", LOOOP_WORKER_MAX_MEMORY=str(96 << 20))
    hog = "import time\nx = bytearray(512 << 20)\nx[::4096] = b'1' * len(x[::4096])\n"
    (tmp_path / "hog.py").write_text(hog + "time.sleep(300)\n")
    try:
        h.start("hog", f"exec {sys.executable} {tmp_path / 'hog.py'}\n")
        wait_until(lambda: h.row("hog")["state"] != "running", 60, "the hog to end")
        row = h.row("hog")
        assert row["health"] == "hit its memory limit" and row["limit"] == "memory", row
    finally:
        h.looop("kill", "hog")


def test_a_worker_filling_its_report_past_the_disk_bound_is_paused_whole_and_named(
    home: Home,
) -> None:
    home.env["LOOOP_WORKER_MAX_DISK"] = str(8 << 20)
    home.start(
        "filler",
        'mkdir -p "$LOOOP_DATA_DIR/reports"; '
        'dd if=/dev/urandom of="$LOOOP_DATA_DIR/reports/filler.md" bs=1M count=16 2>/dev/null; '
        "setsid sh -c 'i=0; while :; do i=$((i+1)); echo $i > \"$0\"; sleep 0.05; done' "
        '"$0.n" & sleep 300\n',
    )
    counter = home.data.parent / "filler.sh.n"
    report = home.data / "reports" / "filler.md"
    wait_until(lambda: report.exists() and report.stat().st_size >= 16 << 20, 30, "the report")
    wait_until(lambda: _count(counter) > 0, 30, "the counter to count")
    r = home.looop("tick")
    assert r.returncode == 0, r.stderr
    said = [json.loads(x) for x in home.events().splitlines() if "worker_over_disk" in x]
    assert [(e["id"], e["folder"], e["max"]) for e in said] == [
        ("filler", "reports/filler*", 8 << 20)
    ]
    assert "worker filler keeps more than its disk limit 8.0 MiB" in r.stderr, r.stderr
    assert "reports/filler*" in r.stderr
    assert home.row("filler")["health"] == "over disk limit"
    # whole: the counter that left the worker's session stops too
    before = _count(counter)
    wait_until(lambda: _settled(counter, before), 10, "the paused counter to settle")
    assert home.looop("worker", "continue", "filler").returncode == 0
    after = _count(counter)
    wait_until(lambda: _count(counter) > after, 10, "the counter to go on after continue")


def _settled(path: Path, before: int) -> bool:
    """The counter stopped: the same value on two reads 0.3 s (six of its steps) apart."""
    a = _count(path)
    until(lambda: False, 0.3)
    return a == _count(path) and a >= before


@pytest.mark.parametrize(
    "leaves",
    [
        pytest.param("setsid sh -c '{loop}' \"$0.n\" & sleep 300\n", id="its session"),
        # orphaned at once: its parent ends, the supervisor (a subreaper) adopts it
        pytest.param("(setsid sh -c '{loop}' \"$0.n\" &); sleep 300\n", id="its parent"),
    ],
)
def test_a_pause_without_a_cgroup_stops_a_process_that_left_the_worker_session(
    tmp_path: Path, leaves: str
) -> None:
    h = Home(tmp_path, LOOOP_NO_CGROUP="1")
    try:
        loop = 'i=0; while :; do i=$((i+1)); echo $i > "$0"; sleep 0.05; done'
        h.start("counter", leaves.replace("{loop}", loop))
        counter = h.data.parent / "counter.sh.n"
        wait_until(lambda: _count(counter) > 0, 30, "the counter to count")
        assert pause(h.data, "counter")
        wait_until(lambda: _settled(counter, 0), 10, "the paused counter to settle")
        stuck = _count(counter)
        assert not until(lambda: _count(counter) != stuck, 1.0)  # 20 of its steps: none taken
        assert h.looop("worker", "continue", "counter").returncode == 0
        wait_until(lambda: _count(counter) > stuck, 10, "the counter to go on")
    finally:
        h.looop("kill", "counter")
        for pid in _procs():  # the setsid counter outlives a group kill without a cgroup
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if str(tmp_path).encode() in cmd:
                os.kill(pid, 9)


def test_a_plain_worker_works_in_its_room_outside_the_data_dir_and_its_disk_counts(
    tmp_path: Path,
) -> None:
    """Unsandboxed, no --repo: it starts in its own room beside the data dir (never in it),
    its TMPDIR beside that, and what it writes there counts against worker_max_disk."""
    h = Home(tmp_path, LOOOP_WORKER_MAX_DISK=str(8 << 20))
    where = tmp_path / "where"
    try:
        h.start(
            "filler",
            f'pwd > {where}.tmp; echo "$TMPDIR" >> {where}.tmp; mv {where}.tmp {where}; '
            "dd if=/dev/urandom of=big bs=1M count=16 2>/dev/null; echo done >> "
            f"{where}; sleep 300\n",
        )
        wait_until(lambda: where.exists() and "done" in where.read_text(), 30, "the filler")
        cwd, tmp, _ = where.read_text().splitlines()
        room = Path(f"{h.data}.work") / "rooms" / "filler"
        assert (cwd, tmp) == (str(room / "work"), str(room / "tmp"))
        assert not list(h.data.rglob("big"))  # nothing of it in the data dir
        r = h.looop("tick")
        assert r.returncode == 0, r.stderr
        assert "worker filler keeps more than its disk limit 8.0 MiB" in r.stderr, r.stderr
        assert h.row("filler")["health"] == "over disk limit"
    finally:
        h.looop("kill", "filler")


FORKS = """import os, sys, time
while not os.path.exists(sys.argv[1]):  # flood only once `worker start` saw it running
    time.sleep(0.02)
for _ in range(300):  # bounded (safe where no bound holds)
    try:
        pid = os.fork()
    except OSError:
        sys.exit(254)  # as an agent CLI whose fork failed ends
    if pid == 0:
        time.sleep(300)
        os._exit(0)
time.sleep(300)
"""


def test_a_worker_that_dies_at_its_process_bound_is_named_so(home: Home) -> None:
    script = home.data.parent / "forks.py"
    script.write_text(FORKS)
    go = home.data.parent / "go"
    home.start("forks", f"exec {sys.executable} {script} {go}\n")
    go.touch()
    wait_until(lambda: home.row("forks")["state"] != "running", 60, "the flood to end")
    row = home.row("forks")
    assert row["health"] == "hit its process limit" and row["limit"] == "pids", row
    r = home.looop("tick")  # the beat records how it ended
    assert r.returncode == 0, r.stderr
    row = home.row("forks")
    assert row["outcome"] == "limited", row
    shown = home.looop("ls", "--all").stdout
    assert "hit its process limit" in shown, shown
