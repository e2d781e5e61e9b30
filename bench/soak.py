"""`make soak`: the pulse under load and injected faults for SOAK_MINUTES (default 30).

A throwaway home (its data dir on a small tmpfs when this machine lets us mount one, its own
runtime dir, every process under libfaketime when Debian's is installed so the soak can step
the clock) runs the real `looop up` pulse with 5 s beats (SOAK_BEAT_S: the suite's short soak
beats faster, so its faults, each timed in beats, fit in fewer seconds), the web beside it
(`"web": {"up": true}`), three idle workers that live the whole run, and the shipped scripted
runner, which hands out a move on every beat: workers started, steered and killed, schedules
written and dropped, goals written and archived, shell runs, asks. A counter sensor changes
every beat, a flapping sensor flips.

Faults come on a timetable, each verified by its effect before its recovery is timed: the
pulse SIGKILLed (it must come back by itself: no `up`), a power loss (SIGKILL of every looop
process of the home, then `up`), a worker's supervisor SIGKILLed (its worker's processes die
with it), a worker whose child escapes with setsid (it dies with the worker), state files
corrupted, the guard file corrupted, the clock stepped back an hour, the data dir read-only
(failed beats, not a crash), a runner that hangs, the disk full, the clock stepped forward an
hour; the last three are long faults (3 minutes in an hour's run, scaled down for a shorter
one) the same pulse must ride out. SOAK_FAULTS picks some of them by key (`fault_<key>`, e.g.
`SOAK_FAULTS=clock_forward,clock`), each at its share of the run.

Every SAMPLE_S the driver samples the RSS of the pulse, the supervisors, the hosts and the
web, the pulse's fds, the home's processes, zombies, hosts and sockets, the web's answer, the
sizes of events, journal and runs, and how long `looop status` takes. At the end it checks
the invariants — no traceback in the data dir or the hosts' own logs, no move lost or
doubled, every fault injected and recovered within its bound, every file under its cap, one
session host, every live session with its supervisor, memory flat per process (a least
squares slope over the plateau), nothing left running and no dead socket after `looop down`
— prints the tables, writes them to docs/SOAK.md and exits 1 when an invariant broke. Moves
are followed as the journal and events grow (soak_follow.py), memory is sampled through the
faults too, and every check has a deliberate break that fails it (HOW_CHECKED).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from faketime_clock import NoSharedClock, hold_shared_clock, release_shared_clock
from looop.home.delays import BACKOFF_BASE_SECS
from soak_follow import Follow
from soak_memory import classify, rss_kb, slope_per_hour

REPO = Path(__file__).resolve().parent.parent
LOOOP = str(Path(sys.executable).parent / "looop")
FAKETIME_LIB = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


def beat_s(raw: str | None) -> int:
    """SOAK_BEAT_S: whole seconds between beats, 1..60 (default 5); 0 for a bad value."""
    raw = "5" if raw is None else raw.strip()
    return int(raw) if raw.isdigit() and 1 <= int(raw) <= 60 else 0


BEAT_S = beat_s(os.environ.get("SOAK_BEAT_S")) or 5  # a bad value is refused by main()
SAMPLE_S = 5.0
TICK_TIMEOUT_S = 8
JOURNAL_CAP = 2_048  # small, so a soak of minutes sees the journal and events rotate
EVENTS_CAP = 24_000
RUNS_KEEP = 12
TMPFS_MB = 48
STEADY_WORKERS = 3  # idle workers that live the whole run: their supervisors' memory is fitted
CLOCK_STEP_S = 3600
# The long faults (the disk full, the data dir read-only, the clock an hour ahead) last 3
# minutes in a run of an hour or more, a twentieth of a shorter run, never under 3 beats:
# long enough for a pulse's watchdog (pulse_watchdog_secs, 120 s) to judge it.
LONG_FAULT_S = 180.0
LOG_CHECK_S = 3.0 * BEAT_S  # at the end, the pulse's log must grow over this long
ZOMBIES_AT_ONCE = 2  # a child that just ended is a zombie until its parent's next wait
# Memory: a least squares slope per process over each half of its plateau (after WARMUP_S of
# its life), for every process that lived at least PLATEAU_SHARE of the run; judged on the
# flatter half (a leak grows in both), against MEM_KB_H plus MEM_NOISE_KB spread over a half.
MEM_KB_H = 2048.0
MEM_NOISE_KB = 256.0
WARMUP_S = 300.0
PLATEAU_SHARE = 0.4
# Memory is judged in every run. In one shorter than this a supervisor's screen and log are
# still filling (warm-up, not growth): its noise allowance grows as the run shrinks
# (MEM_NOISE_KB × MEM_MIN_RUN_S / run), still far below a leak of a MB a beat.
MEM_MIN_RUN_S = 20 * 60
# Each fault and how long the loop may take to be whole again after it.
RECOVERY_S = {
    "pulse SIGKILLed, back by itself": 20,
    "power loss, looop up": 45,
    "worker supervisor SIGKILLed": 3 * BEAT_S + 10,
    "worker escapes with setsid, killed": 10,
    "state files corrupted": 6 * BEAT_S,
    "guard file corrupted, fixed as told": 6 * BEAT_S,
    "clock stepped back an hour": 6 * BEAT_S,
    "clock stepped forward an hour": 6 * BEAT_S,
    "data dir read-only for a while": 6 * BEAT_S,
    # the hung beat starts on the next change, times out, then the failure backoff, then a beat
    "runner hangs": TICK_TIMEOUT_S + BACKOFF_BASE_SECS + 2 * BEAT_S,
    "disk full": 6 * BEAT_S,
}
COUNTER = '#!/bin/sh\necho "{\\"signal\\":{\\"n\\":$(( $(date +%s) / 5 ))}}"\n'
FLAP = '#!/bin/sh\necho "{\\"signal\\":{\\"up\\":$(( $(date +%s) / 2 % 2 ))}}"\n'
STEADY = '#!/bin/sh\necho \'{"signal":{"ok":true}}\'\n'
# A worker: shows its brief's first line, asks the human once, then echoes what it is told.
WORKER = (
    'bash -c \'head -n 1 "$1"; '
    '"$LOOOP_BIN" ask --prompt "soak: go on?" --options yes,no >/dev/null 2>&1 & '
    'while IFS= read -r line; do echo "got:$line"; done\' agent {{prompt_file}}'
)
IDLE = "sleep 1000000 # {{prompt_file}}"
# A worker whose child leaves its session and says where it is (the escapee dies with it).
ESCAPE = (
    "sh -c 'setsid sh -c \"echo \\$\\$ > {pidfile}; exec sleep 1000000\" & exec sleep 1000000'"
    " # {{prompt_file}}"
)


def _moves(k: int) -> dict[str, object]:
    """The k-th scripted move: a cycle over every kind the soak drives."""
    tag = f"soak step {k}"
    kind = k % 9
    if kind == 0:
        return {"action": "start_worker", "id": f"w{k}", "prompt": "soak", "journal": tag}
    if kind == 1:
        return {"action": "steer_session", "id": f"w{k - 1}", "input": "hi", "journal": tag}
    if kind == 2:
        return {"action": "write_schedule", "name": f"s{k}", "every_s": 60, "journal": tag}
    if kind == 3:
        return {"action": "run_shell", "cmd": "echo soak", "reason": "soak", "journal": tag}
    if kind == 4:
        return {"action": "write_goal", "id": f"g{k}", "body": "# soak goal", "journal": tag}
    if kind == 5:
        return {"action": "kill_worker", "id": f"w{k - 5}", "journal": tag}
    if kind == 6:
        return {"action": "drop_schedule", "name": f"s{k - 4}", "journal": tag}
    if kind == 7:
        return {"action": "archive_goal", "id": f"g{k - 3}", "journal": tag}
    return {"action": "noop", "reason": "soak", "journal": tag}


_STEP = re.compile(r"soak step (\d+)\b")


@dataclass
class MemPoint:
    """The RSS of the home's looop processes at `t`: taken with every sample and every
    SAMPLE_S while a fault runs (a leak under a fault is a leak too)."""

    t: float
    rss: dict[str, int]  # "role:pid" -> kB


class HasRss(Protocol):
    @property
    def t(self) -> float: ...
    @property
    def rss(self) -> dict[str, int]: ...


@dataclass
class Sample:
    t: float
    pulse_pid: int | None
    rss: dict[str, int]  # "role:pid" -> kB, for pulse, supervisor, host, web
    fds: int
    procs: int
    zombies: int
    hosts: int
    sockets: int
    dead_sockets: int
    web_ok: bool
    events_b: int
    journal_b: int
    runs: int
    status_ms: float
    answered: int = 0
    in_fault: bool = False


@dataclass
class Fault:
    name: str
    at: float
    recovered_s: float | None = None
    verified: str = ""  # what showed the fault really happened; empty: it did not
    note: str = ""


@dataclass
class Soak:
    root: Path
    data: Path
    runtime: Path
    env: dict[str, str]
    script: Path
    tmpfs: bool = False
    faketime: Path | None = None  # the offset file every process of the home reads
    holder: subprocess.Popen[bytes] | None = None  # keeps libfaketime's shared state alive
    web_port: int = 0
    samples: list[Sample] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    t0: float = 0.0
    minutes: float = 1.0
    answered: int = 0
    steady_gen: int = 0
    in_fault: bool = False
    planned: int | None = None  # faults this run injects when SOAK_FAULTS picked some
    kill: Callable[[int, int], None] = os.kill  # a test swaps it to prove a check can fail
    # every move of the whole run, read as the journal and the events grow (soak_follow.py)
    journaled: list[int] = field(default_factory=list)
    decided: list[int] = field(default_factory=list)
    slept: int = 0  # beats the pulse finished (its pulse_sleep records), the whole run
    follows: list[Follow] = field(default_factory=list)
    mem: list[MemPoint] = field(default_factory=list)
    nudges: int = 0  # goals a fault wrote to change the world (`_nudge`)

    def follow(self) -> None:
        """Read what the journal and the events gained since the last look."""
        if not self.follows:
            self.follows = [
                Follow(self.data / "journal.md", self._journal_line),
                Follow(self.data / "events.jsonl", self._event_line),
            ]
        for f in self.follows:
            with contextlib.suppress(OSError):
                f.poll()

    def _journal_line(self, line: str) -> None:
        self.journaled += [int(m) for m in _STEP.findall(line)]

    def _event_line(self, line: str) -> None:
        if '"pulse_sleep"' in line:
            self.slept += 1
            return
        if '"decided"' not in line:
            return
        with contextlib.suppress(ValueError):
            obj = json.loads(line)
            m = _STEP.search(str(obj.get("journal", ""))) if isinstance(obj, dict) else None
            if m and obj.get("event") == "decided":
                self.decided.append(int(m.group(1)))

    def wait(self, secs: float) -> None:
        """Let `secs` pass, reading the journal and events as they grow meanwhile (and the
        memory, every SAMPLE_S)."""
        end = time.monotonic() + secs
        while (left := end - time.monotonic()) > 0:
            self.follow()
            if (
                self.t0
                and time.monotonic() - self.t0 - (self.mem[-1].t if self.mem else 0) >= SAMPLE_S
            ):
                self.memory()
            time.sleep(min(1.0, left))

    def memory(self) -> dict[str, int]:
        roles = self.roles()
        rss = {
            f"{role}:{p}": kb
            for role in ("pulse", "supervisor", "host", "web")
            for p in roles.get(role, [])
            if (kb := rss_kb(p))
        }
        self.mem.append(MemPoint(time.monotonic() - self.t0, rss))
        return rss

    def answer_asks(self) -> None:
        """A human answering what the workers ask, as they come."""
        r = self.looop("asks", "--json")
        with contextlib.suppress(ValueError):
            for ask in json.loads(r.stdout or "[]"):
                live = isinstance(ask, dict) and str(ask.get("status", "")).upper() == "LIVE"
                if live and self.looop("answer", str(ask.get("id")), "yes").returncode == 0:
                    self.answered += 1

    def long_fault_s(self) -> float:
        return min(LONG_FAULT_S, max(3.0 * BEAT_S, self.minutes * 60 / 20))

    # ---- the CLI
    def looop(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                [LOOOP, *args], env=self.env, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired as e:
            return subprocess.CompletedProcess(e.cmd, 124, "", f"timed out after {timeout} s")

    def status(self) -> dict[str, object]:
        r = self.looop("status", "--json")
        try:
            out = json.loads(r.stdout)
        except ValueError:
            return {}
        return out if isinstance(out, dict) else {}

    def pulse_status(self) -> dict[str, object]:
        p = self.status().get("pulse")
        return p if isinstance(p, dict) else {}

    def pulse_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int((self.data / ".lock" / "pid").read_text().strip())
        return None

    def records(self, name: str) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for f in (self.data / "events.jsonl.1", self.data / "events.jsonl"):
            with contextlib.suppress(OSError):
                for line in f.read_text(errors="replace").splitlines():
                    with contextlib.suppress(ValueError):
                        obj = json.loads(line)
                        if isinstance(obj, dict) and obj.get("event") == name:
                            out.append(obj)
        return out

    def last_step(self) -> int:
        """The highest scripted step the loop decided (in the kept events): a count that
        survives rotation and clock steps."""
        steps = [
            int(m.group(1))
            for r in self.records("decided")
            if (m := re.search(r"soak step (\d+)\b", str(r.get("journal", ""))))
        ]
        return max(steps, default=-1)

    def roles(self) -> dict[str, list[int]]:
        return classify(self.data)

    def home_pids(self) -> list[int]:
        """Every live process of this home: looop's and its workers' (their environment names
        the data dir), zombies left out."""
        needle = f"LOOOP_DATA_DIR={self.data}".encode()
        out = []
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) == os.getpid():
                continue
            try:
                env = Path(f"/proc/{d}/environ").read_bytes()
            except OSError:
                continue
            if needle in env and _state(int(d)) not in ("Z", "X", ""):
                out.append(int(d))
        return out

    def web_ok(self) -> bool:
        token = ""
        with contextlib.suppress(OSError):
            token = (self.data / ".lock" / "web-token").read_text().strip()
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.web_port}/api/v1/state",
            headers={"Authorization": f"Bearer {token}"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                r.read()
                return bool(r.status == 200)
        except (OSError, ValueError):
            return False

    # ---- sampling
    def sample(self) -> Sample:
        self.follow()
        pid = self.pulse_pid()
        fds = 0
        if pid:
            with contextlib.suppress(OSError):
                fds = len(os.listdir(f"/proc/{pid}/fd"))
        rss = self.memory()
        roles = self.roles()
        procs, zombies = _home_processes(self.data)
        t = time.monotonic()
        self.looop("status")
        status_ms = (time.monotonic() - t) * 1000
        runs = self.data / "runs"
        live_socks, dead_socks = _sockets(self.runtime)
        return Sample(
            t=time.monotonic() - self.t0,
            pulse_pid=pid,
            rss=rss,
            fds=fds,
            procs=procs,
            zombies=zombies,
            hosts=len(roles.get("host", [])),
            sockets=live_socks,
            dead_sockets=dead_socks,
            web_ok=self.web_ok(),
            events_b=_size(self.data / "events.jsonl"),
            journal_b=_size(self.data / "journal.md"),
            runs=len(list(runs.iterdir())) if runs.is_dir() else 0,
            status_ms=status_ms,
            in_fault=self.in_fault,
        )

    # ---- waiting for recovery
    def recover(self, fault: Fault, ok: Callable[[], bool], limit: float | None = None) -> None:
        limit = RECOVERY_S[fault.name] if limit is None else limit
        start = time.monotonic()
        while time.monotonic() - start < limit + 30:
            if ok():
                fault.recovered_s = round(time.monotonic() - start, 1)
                return
            self.wait(1.0)
        fault.note = fault.note or "never recovered"

    def next_decide(self) -> Callable[[], bool]:
        """A decision later than every one made so far."""
        before = self.last_step()
        return lambda: self.last_step() > before

    def after(self, event: str) -> Callable[[], bool]:
        """`event` recorded from now on (by its stamp: a count shrinks when events rotate)."""
        since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        return lambda: any(str(r.get("ts", "")) >= since for r in self.records(event))

    def start_steady(self) -> list[str]:
        """Idle workers that live on: their supervisors are fitted for memory."""
        self.steady_gen += 1
        started = []
        for i in range(STEADY_WORKERS):
            wid = f"steady{self.steady_gen}-{i}"
            r = self.looop("worker", "start", wid, "idle", "--no-sandbox", "--command", IDLE)
            if r.returncode == 0:
                started.append(wid)
        return started

    def set_clock(self, offset_s: int) -> None:
        assert self.faketime is not None
        tmp = self.faketime.with_suffix(".tmp")
        tmp.write_text(f"{offset_s:+d}\n")
        os.replace(tmp, self.faketime)

    def home_clock(self) -> float | None:
        """The wall clock the home's processes see (`date +%s` under its environment)."""
        r = subprocess.run(
            ["date", "+%s"], env=self.env, capture_output=True, text=True, timeout=10
        )
        try:
            return float(r.stdout.strip())
        except ValueError:
            return None

    def beats(self) -> int:
        """Beats the pulse finished so far (its pulse_sleep records, followed through the
        events' rotations): what the clock faults count, as the pulse's log can stop."""
        self.follow()
        return self.slept

    def beats_logged(self) -> int:
        """Beats the pulse's log shows (its `next beat in` lines), over its rotations."""
        n = 0
        logs = self.data / "sessions" / "pulse"
        for f in [logs / "output.log", *sorted((logs / "log").glob("output.log*"))]:
            with contextlib.suppress(OSError):
                n += f.read_bytes().count(b"next beat in")
        return n


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _alive(pid: int) -> bool:
    return _state(pid) not in ("", "Z", "X")


def _sid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[3])
    except (OSError, IndexError, ValueError):
        return None


def _gone(pids: list[int], within_s: float) -> list[int]:
    """Which of `pids` still live after waiting up to `within_s` for them to die."""
    deadline = time.monotonic() + within_s
    while True:
        left = [p for p in pids if _alive(p)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.2)


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except OSError:
        return 0


def _home_processes(data: Path) -> tuple[int, int]:
    """(processes of this soak: the pulse, supervisors, workers, hosts; zombies among their
    children)."""
    mine: set[int] = set()
    parents: dict[int, int] = {}
    states: dict[int, str] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        pid = int(d)
        try:
            rest = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        states[pid], parents[pid] = rest[0], int(rest[1])
        try:
            env = Path(f"/proc/{d}/environ").read_bytes()
        except OSError:
            continue  # a zombie's environment cannot be read: it is judged by its parent
        if f"LOOOP_DATA_DIR={data}".encode() in env:
            mine.add(pid)
    return len(mine), len(home_zombies(states, parents, mine))


def home_zombies(states: dict[int, str], parents: dict[int, int], mine: set[int]) -> list[int]:
    """The zombies a process of the home has not reaped: state Z, its parent one of the home's
    (a zombie's own environment cannot be read, so it never names the home itself)."""
    return sorted(p for p, st in states.items() if st == "Z" and parents.get(p) in mine)


def _sockets(runtime: Path) -> tuple[int, int]:
    """(sockets under the home's runtime dir that answer, sockets nobody listens on)."""
    live = dead = 0
    for p in runtime.rglob("*"):
        with contextlib.suppress(OSError):
            if not p.is_socket():
                continue
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(2)
                try:
                    s.connect(str(p))
                    live += 1
                except (ConnectionRefusedError, FileNotFoundError):
                    dead += 1
                except OSError:
                    live += 1  # busy (a full backlog) is still someone listening
    return live, dead


def _mount_tmpfs(data: Path) -> bool:
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_MB}m,mode=0700", "tmpfs", str(data)],
        capture_output=True,
        check=False,
    )
    return r.returncode == 0


def _remount(data: Path, mode: str) -> bool:
    r = subprocess.run(
        ["mount", "-o", f"remount,{mode}", str(data)], capture_output=True, check=False
    )
    return r.returncode == 0


def _read_only(data: Path, on: bool) -> str | None:
    """A read-only bind mount of the data dir over itself (paths opened from now on fail
    with EROFS, as on a disk remounted read-only; the tmpfs itself refuses a remount while
    files are open for writing), or that mount gone again. None, or what mount said."""
    if not on:
        r = subprocess.run(["umount", "-l", str(data)], capture_output=True, check=False)
        return None if r.returncode == 0 else r.stderr.decode(errors="replace").strip()
    said = ""
    # util-linux's mount locks its table: another test's mount at that moment fails it, so
    # each step is tried a few times; a bind left read-write is taken down again
    for args in (["--bind", str(data), str(data)], ["-o", "remount,bind,ro", str(data)]):
        for _ in range(5):
            r = subprocess.run(["mount", *args], capture_output=True, check=False, timeout=30)
            if r.returncode == 0:
                break
            said = r.stderr.decode(errors="replace").strip()
        else:
            if args[0] == "-o":
                _read_only(data, False)
            return said or f"mount {' '.join(args)} failed"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def setup(minutes: float) -> Soak:
    root = Path(tempfile.mkdtemp(prefix="looop-soak-"))
    data = root / "data"
    data.mkdir()
    runtime = root / "rt"
    runtime.mkdir(mode=0o700)
    tmpfs = _mount_tmpfs(data)
    beats = int(minutes * 60 / BEAT_S) + 400
    script = root / "script.json"
    script.write_text(json.dumps([{"decision": _moves(k)} for k in range(beats)]))
    runner = f"{sys.executable} -m looop.demo.runner --script {script}"
    port = _free_port()
    cfg = {
        "default": "scripted",
        "runners": {"scripted": {"tick": runner, "worker": WORKER}},
        "max_daily_usd": 0,
        "interval": BEAT_S,
        "sandbox": "off",
        "web": {"up": True, "port": port},
    }
    (data / "config.json").write_text(json.dumps(cfg))
    sensors = data / "sensors"
    sensors.mkdir()
    for name, body in (("counter", COUNTER), ("flap", FLAP), ("steady", STEADY)):
        (sensors / f"{name}.sh").write_text(body)
        (sensors / f"{name}.sh").chmod(0o755)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root),
        "LANG": "C.UTF-8",
        "LOOOP_DATA_DIR": str(data),
        "LOOOP_RUNTIME_DIR": str(runtime),
        "LOOOP_TICK_TIMEOUT_SECS": str(TICK_TIMEOUT_S),
        "LOOOP_JOURNAL_MAX_BYTES": str(JOURNAL_CAP),
        "LOOOP_EVENTS_MAX_BYTES": str(EVENTS_CAP),
        "LOOOP_RUNS_KEEP": str(RUNS_KEEP),
        "LOOOP_MAX_DECIDES_PER_HOUR": "0",
        "LOOOP_BACKOFF_MAX_SECS": str(4 * BEAT_S),  # a failed beat backs off 4 beats at most
        "LOOOP_SESSION_TTL": "120",
        "LOOOP_MAX_WORKERS": "12",
    }
    if os.environ.get(
        "LOOOP_TRACEMALLOC"
    ):  # where a pulse's memory goes (loop/heartbeat.py MemTrace)
        env["LOOOP_TRACEMALLOC"] = os.environ["LOOOP_TRACEMALLOC"]
    faketime = None
    shim = _sleep_shim(root)
    holder = _faketime_holder() if FAKETIME_LIB.is_file() and shim else None
    if holder is not None and shim is not None:
        # every process of the home reads its wall clock through this offset file (re-read
        # each second); the monotonic clock stays true, as on a machine whose clock steps
        faketime = root / "faketime"
        faketime.write_text("+0\n")
        env |= {
            "LD_PRELOAD": f"{shim} {FAKETIME_LIB}",
            "FAKETIME_SHARED": holder[1],
            "FAKETIME_TIMESTAMP_FILE": str(faketime),
            "FAKETIME_CACHE_DURATION": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        }
    return Soak(
        root=root,
        data=data,
        runtime=runtime,
        env=env,
        script=script,
        tmpfs=tmpfs,
        faketime=faketime,
        holder=holder[0] if holder else None,
        web_port=port,
        minutes=minutes,
    )


SLEEP_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
typedef int (*sleeper)(clockid_t, int, const struct timespec *, struct timespec *);
int clock_nanosleep(clockid_t c, int flags, const struct timespec *req, struct timespec *rem) {
    if (c == CLOCK_MONOTONIC)
        return syscall(SYS_clock_nanosleep, c, flags, req, rem) == 0 ? 0 : errno;
    return ((sleeper)dlsym(RTLD_NEXT, "clock_nanosleep"))(c, flags, req, rem);
}
"""


def _sleep_shim(root: Path) -> Path | None:
    """libfaketime 0.9.10 with FAKETIME_DONT_FAKE_MONOTONIC fails every monotonic
    clock_nanosleep with EINVAL (Python's time.sleep): a shim loaded before it sends those
    straight to the kernel. None without a C compiler (the clock fault then fails)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    src, lib = root / "sleepshim.c", root / "sleepshim.so"
    src.write_text(SLEEP_SHIM)
    r = subprocess.run(
        [cc, "-shared", "-fPIC", "-O2", "-o", str(lib), str(src), "-ldl"], capture_output=True
    )
    return lib if r.returncode == 0 else None


def _faketime_holder() -> tuple[subprocess.Popen[bytes], str] | None:
    """The shared clock's holder, living the whole soak (a power-loss fault kills every
    process of the home, never it); None where it cannot start (the clock faults are then
    skipped and said)."""
    try:
        return hold_shared_clock()
    except NoSharedClock:
        return None


# ---- the faults: each proves it happened (`verified`), then times the recovery


def fault_pulse(s: Soak) -> Fault:
    """SIGKILL of the pulse alone: its supervisor must restart it with no `up` from anyone."""
    f = Fault("pulse SIGKILLed, back by itself", time.monotonic() - s.t0)
    old = s.pulse_pid()
    before = s.pulse_status().get("restarts")
    restarts = before if isinstance(before, int) else 0
    if old is None:
        f.note = "no pulse to kill"
        return f
    with contextlib.suppress(OSError):
        s.kill(old, signal.SIGKILL)
    if _gone([old], 5.0):
        f.note = f"pulse {old} did not die"
        return f
    f.verified = f"pulse {old} died"

    def back() -> bool:
        st = s.pulse_status()
        n = st.get("restarts")
        new = s.pulse_pid()
        return (
            bool(st.get("running"))
            and new is not None
            and new != old
            and isinstance(n, int)
            and n > restarts
        )

    s.recover(f, back)
    cause = s.pulse_status().get("last_cause")
    if f.recovered_s is not None:
        f.note = f"pid {old} -> {s.pulse_pid()}, status says: {cause}"
    return f


def fault_power(s: Soak) -> Fault:
    """Every looop process of the home SIGKILLed at once (a power cut, an OOM storm), then
    `looop up`: the pulse, the web and the hosts come back, and nothing of the old run lives."""
    f = Fault("power loss, looop up", time.monotonic() - s.t0)
    roles = s.roles()
    victims = [p for role, pids in roles.items() for p in pids if role != "other"]
    workers_before = set(s.home_pids()) - set(victims)
    for pid in victims:
        with contextlib.suppress(OSError):
            s.kill(pid, signal.SIGKILL)
    left = _gone(victims, 5.0)
    if left or not victims:
        f.note = f"still alive after SIGKILL: {left}" if left else "nothing to kill"
        return f
    if s.pulse_status().get("running"):
        f.note = "the pulse still runs after the power loss"
        return f
    f.verified = f"{len(victims)} looop processes died ({', '.join(sorted(roles))})"
    time.sleep(1.0)
    up = s.looop("up", timeout=120)
    if up.returncode != 0:
        f.note = f"looop up failed: {up.stderr.strip()[:200]}"
        return f
    decided = s.next_decide()
    _nudge(s, "up")  # the world the dead run last decided on may be the world now

    def whole() -> bool:
        r = s.roles()
        return (
            bool(s.pulse_status().get("running"))
            and len(r.get("host", [])) == 1
            and s.web_ok()
            and decided()
        )

    s.recover(f, whole)
    survivors = _gone(sorted(workers_before), 10.0)
    if survivors:
        f.note = f"the old run's workers live on: pids {survivors[:5]}"
        f.recovered_s = None
    s.start_steady()
    return f


def fault_worker(s: Soak) -> Fault:
    """A worker's supervisor SIGKILLed: the loop records the worker dead and every process
    it ran dies with it."""
    f = Fault("worker supervisor SIGKILLed", time.monotonic() - s.t0)
    from looop.sessions.state import list_sessions

    live = [
        x
        for x in list_sessions(s.data)
        if x.alive and x.id.startswith("steady") and x.supervisor_pid and x.child_pid
    ]
    if not live:
        f.note = "no live worker to kill"
        return f
    victim = live[0]
    assert victim.supervisor_pid is not None and victim.child_pid is not None
    child = victim.child_pid
    with contextlib.suppress(OSError):
        s.kill(victim.supervisor_pid, signal.SIGKILL)
    if _gone([victim.supervisor_pid], 5.0):
        f.note = f"supervisor {victim.supervisor_pid} did not die"
        return f
    f.verified = f"supervisor {victim.supervisor_pid} of {victim.id} died"
    status = s.data / "sessions" / victim.id / "status.json"

    def marked() -> bool:
        if _alive(child):
            return False
        with contextlib.suppress(OSError, ValueError):
            return json.loads(status.read_text()).get("state") in ("killed", "dead", "exited")
        return not status.exists()  # reaped meanwhile: recorded and gone

    s.recover(f, marked)
    if _alive(child):
        f.note = f"its worker (pid {child}) outlived the supervisor"
    else:
        f.note = f"worker {victim.id}, its process {child} died too"
    return f


def fault_escape(s: Soak) -> Fault:
    """A worker whose child leaves with setsid (an agent's dev server): killing the worker
    kills the escapee."""
    f = Fault("worker escapes with setsid, killed", time.monotonic() - s.t0)
    pidfile = s.root / f"escapee-{int(f.at)}"
    wid = f"esc{int(f.at)}"
    cmd = ESCAPE.replace("{pidfile}", str(pidfile))
    r = s.looop("worker", "start", wid, "escape", "--no-sandbox", "--command", cmd)
    if r.returncode != 0:
        f.note = f"worker start failed: {r.stderr.strip()[:200]}"
        return f
    deadline = time.monotonic() + 10
    escapee = None
    while time.monotonic() < deadline and escapee is None:
        with contextlib.suppress(OSError, ValueError):
            escapee = int(pidfile.read_text().strip())
        time.sleep(0.2)
    from looop.sessions.state import get_session

    main = get_session(s.data, wid).child_pid
    if escapee is None or not _alive(escapee) or main is None:
        f.note = "the escapee never started"
        return f
    if _sid(escapee) == _sid(main):
        f.note = "the escapee stayed in the worker's session (setsid did not happen)"
        return f
    f.verified = f"pid {escapee} in session {_sid(escapee)}, the worker's is {_sid(main)}"
    k = s.looop("kill", wid)
    if k.returncode != 0:
        f.note = f"looop kill failed: {k.stderr.strip()[:200]}"
        return f
    s.recover(f, lambda: not _alive(escapee))
    if _alive(escapee):
        f.note = f"escapee {escapee} outlived its worker"
    return f


def fault_corrupt(s: Soak) -> Fault:
    """Files the loop rewrites or reports on its own: a snapshot and a schedule."""
    f = Fault("state files corrupted", time.monotonic() - s.t0)
    snap = s.data / "snapshots" / "sensor-steady.json"
    with contextlib.suppress(OSError):
        snap.write_text("\x00{not json")
    sched = s.data / "schedules"
    sched.mkdir(exist_ok=True)
    (sched / "broken.json").write_text("{not json")
    if _size(snap) == 0 or not snap.read_bytes().startswith(b"\x00"):
        f.note = "the snapshot could not be corrupted"
        return f
    f.verified = "snapshot and schedule hold garbage"
    decided = s.next_decide()

    def healed() -> bool:
        with contextlib.suppress(OSError, ValueError):
            return decided() and isinstance(json.loads(snap.read_text()), dict)
        return False

    s.recover(f, healed)
    (sched / "broken.json").unlink(missing_ok=True)
    return f


def fault_guard(s: Soak) -> Fault:
    """The committed world hash: the loop fails closed (idles and names the fix); the soak
    then does what it says, and the loop must decide again."""
    f = Fault("guard file corrupted, fixed as told", time.monotonic() - s.t0)
    guard, garbage = s.data / ".last-tick-hash", "\x00garbage{"
    reported = s.after("guard_corrupt")
    tries = 0
    while tries < 3 and not reported():  # a beat running as it is written commits its own
        tries += 1  # hash over it: the corruption is healed unseen, and written again
        guard.write_text(garbage)
        start = time.monotonic()
        while not reported() and time.monotonic() - start < 4 * BEAT_S:
            with contextlib.suppress(OSError):
                if guard.read_text(errors="replace") != garbage:
                    break
            time.sleep(1.0)
    if not reported():
        f.note = f"the loop never reported the corrupt guard ({tries} tries)"
        return f
    f.verified = "the loop reported guard_corrupt" + (f" (try {tries})" if tries > 1 else "")
    guard.unlink(missing_ok=True)  # the fix the loop named
    s.recover(f, s.next_decide())
    return f


def fault_clock(s: Soak) -> Fault:
    """The wall clock of every process of the home steps back an hour: the pulse keeps its
    cadence (its waits run on the monotonic clock) and decides again; then the clock steps
    forward again, and it decides again after that step too."""
    f = Fault("clock stepped back an hour", time.monotonic() - s.t0)
    if s.faketime is None:
        f.note = f"skipped: no libfaketime ({FAKETIME_LIB}; apt install libfaketime)"
        return f
    before = s.home_clock()
    s.set_clock(-CLOCK_STEP_S)
    s.wait(1.5)  # libfaketime re-reads the offset each second
    after = s.home_clock()
    if before is None or after is None or not (after < before - CLOCK_STEP_S + 60):
        f.note = f"the home's clock did not step: {before} -> {after}"
        s.set_clock(0)
        return f
    f.verified = f"the home's clock went {int(before - after)} s back"
    beats = s.beats()
    decided = s.next_decide()
    _nudge(s, "back")
    s.recover(f, lambda: s.beats() >= beats + 2 and decided())
    s.set_clock(0)
    _decides_after_return(s, f)
    return f


def _nudge(s: Soak, when: str) -> None:
    """A human writes a goal just after a long fault ends (the clock stepped, the disk back)
    or the home is up again after a power loss:
    the world changes, so a decide is due however the scripted moves stand (after a noop the
    world may not change again by itself — the soak's counter is volatile, so not part of the
    world — and an idle loop rightly never decides). The fault then times whether the pulse
    acts on a change, not whether one happened to come."""
    s.nudges += 1
    s.looop("goal", "write", f"fault-{when}-{s.nudges}", "goal: a soak fault ended")


def _decides_after_return(s: Soak, f: Fault) -> None:
    """A clock fault ends by stepping the clock back to real time: the loop must decide
    again after that step too (what the home stamped meanwhile is off by the step)."""
    s.wait(1.5)  # libfaketime re-reads the offset each second
    if f.recovered_s is None:
        return
    back = Fault(f.name, f.at)
    beats = s.beats()
    decided = s.next_decide()
    _nudge(s, "returned")
    s.recover(back, lambda: s.beats() >= beats + 2 and decided())
    if back.recovered_s is None:
        f.note = (f.note + "; " if f.note else "") + "no decide after the clock came back"
        f.recovered_s = None
    else:
        f.note = (f.note + "; " if f.note else "") + (
            f"decided {back.recovered_s} s after the clock came back"
        )


def fault_read_only(s: Soak) -> Fault:
    """The data dir read-only for a long fault (a remount, a failing disk): failed beats,
    never a crash or a restart; the loop decides again once it is writable."""
    f = Fault("data dir read-only for a while", time.monotonic() - s.t0)
    if not s.tmpfs:
        f.note = "skipped: no tmpfs could be mounted here"
        return f
    pid = s.pulse_pid()
    before = s.pulse_status().get("restarts")
    said = _read_only(s.data, True)
    if said is not None:
        f.note = f"the read-only bind mount failed: {said}"
        return f
    try:
        (s.data / "probe").write_text("x")
        f.note = "the data dir still takes writes"
        return f
    except OSError as e:
        if e.errno != errno.EROFS:
            f.note = f"a write failed, but not read-only: {e}"
            return f
    finally:
        s.wait(s.long_fault_s())
        _read_only(s.data, False)
    f.verified = f"writes failed with EROFS for {s.long_fault_s():.0f} s"
    decided = s.next_decide()
    _nudge(s, "writable")
    s.recover(f, decided)
    after = s.pulse_status().get("restarts")
    if s.pulse_pid() != pid or after != before:
        f.note = f"the pulse restarted (pid {pid} -> {s.pulse_pid()}, restarts {before} -> {after})"
        f.recovered_s = None
    elif b"beat failed on the data dir" in _pulse_log(s):
        f.note = "the pulse said: beat failed on the data dir"
    return f


def _pulse_log(s: Soak) -> bytes:
    with contextlib.suppress(OSError):
        return (s.data / "sessions" / "pulse" / "output.log").read_bytes()
    return b""


def fault_hang(s: Soak) -> Fault:
    f = Fault("runner hangs", time.monotonic() - s.t0)
    pos_file = s.script.with_name(s.script.name + ".pos")
    steps = json.loads(s.script.read_text())
    pos = int(pos_file.read_text().strip() or "0") if pos_file.exists() else 0
    steps[pos:pos] = [{"hang": True}]
    tmp = s.script.with_suffix(".tmp")
    tmp.write_text(json.dumps(steps))
    os.replace(tmp, s.script)
    s.recover(f, s.after("tick_failed"))  # the deadline ended it
    if f.recovered_s is None:
        f.note = "the hanging runner was never timed out"
        return f
    f.verified = "a beat failed on the runner's deadline"
    hung_for = f.recovered_s
    f.recovered_s = None
    s.recover(f, s.next_decide())
    if f.recovered_s is not None:
        f.recovered_s = round(f.recovered_s + hung_for, 1)
    return f


def fault_disk(s: Soak) -> Fault:
    f = Fault("disk full", time.monotonic() - s.t0)
    if not s.tmpfs:
        f.note = "skipped: no tmpfs could be mounted here"
        return f
    pid = s.pulse_pid()
    filler = s.data / "filler.bin"
    full = None
    try:
        with open(filler, "wb") as out:
            chunk = b"\0" * (1 << 20)
            while True:
                out.write(chunk)
                out.flush()
    except OSError as e:
        full = e
    if full is None or full.errno != errno.ENOSPC:
        filler.unlink(missing_ok=True)
        f.note = f"the disk never filled: {full}"
        return f
    f.verified = f"ENOSPC after {_size(filler) >> 20} MB, held {s.long_fault_s():.0f} s"
    before = s.pulse_status().get("restarts")
    s.wait(s.long_fault_s())
    filler.unlink(missing_ok=True)
    decided = s.next_decide()
    _nudge(s, "room")
    s.recover(f, decided)
    _stayed_up(s, f, pid, before)
    return f


def _stayed_up(s: Soak, f: Fault, pid: int | None, restarts: object) -> None:
    """A fault the pulse must ride out: the same pulse runs after it, never restarted (nor
    stopped by its watchdog)."""
    st = s.pulse_status()
    if s.pulse_pid() != pid or st.get("restarts") != restarts or not st.get("running"):
        f.note = (
            f"the pulse did not stay up (pid {pid} -> {s.pulse_pid()}, restarts {restarts} -> "
            f"{st.get('restarts')}, running {st.get('running')}: {st.get('last_cause')})"
        )
        f.recovered_s = None


def fault_clock_forward(s: Soak) -> Fault:
    """The wall clock of every process of the home steps forward an hour (a resume from
    suspend, a restored VM) and stays there for a long fault: the same pulse beats on and
    decides (no watchdog judges it by the wall clock); then the clock steps back, and it
    decides again after that step too."""
    f = Fault("clock stepped forward an hour", time.monotonic() - s.t0)
    if s.faketime is None:
        f.note = f"skipped: no libfaketime ({FAKETIME_LIB}; apt install libfaketime)"
        return f
    pid, restarts = s.pulse_pid(), s.pulse_status().get("restarts")
    before = s.home_clock()
    s.set_clock(CLOCK_STEP_S)
    s.wait(1.5)  # libfaketime re-reads the offset each second
    after = s.home_clock()
    try:
        if before is None or after is None or not (after > before + CLOCK_STEP_S - 60):
            f.note = f"the home's clock did not step: {before} -> {after}"
            return f
        f.verified = (
            f"the home's clock went {int(after - before)} s forward, held {s.long_fault_s():.0f} s"
        )
        beats = s.beats()
        decided = s.next_decide()
        _nudge(s, "ahead")
        s.recover(f, lambda: s.beats() >= beats + 2 and decided())
        s.wait(max(0.0, s.long_fault_s() - (f.recovered_s or 0.0)))
        _stayed_up(s, f, pid, restarts)
    finally:
        s.set_clock(0)
    if f.verified:
        _decides_after_return(s, f)
    return f


# Early: the faults that replace the pulse and every host, so the last ones live long enough
# for their memory to be fitted.
FAULTS = (
    (0.05, fault_pulse),
    (0.12, fault_power),
    (0.25, fault_worker),
    (0.32, fault_escape),
    (0.40, fault_corrupt),
    (0.48, fault_guard),
    (0.56, fault_clock),
    (0.64, fault_read_only),
    (0.72, fault_hang),
    (0.80, fault_disk),
    # last: what the home stamps while an hour ahead reads as later than anything after
    (0.90, fault_clock_forward),
)


# ---- invariants and the report


_ERROR_LINE = re.compile(r"(?m)^[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)\b[^\n\"]*")


def _tracebacks(root: Path) -> list[str]:
    hits: list[str] = []
    for p in root.rglob("*"):
        with contextlib.suppress(OSError):
            if not p.is_file() or p.suffix in (".bin",) or p.stat().st_size > 64 << 20:
                continue
            raw = p.read_bytes()
            at = raw.find(b"Traceback (most recent call last)")
            if at >= 0:
                # the file, and the error line that ends the traceback: what a reader needs
                tail = raw[at : at + 4000].decode("utf-8", "replace").replace("\\n", "\n")
                errs = [m.group(0) for m in _ERROR_LINE.finditer(tail)][-1:] or [""]
                hits.append(f"{p.relative_to(root)}: {errs[0][:200]}")
    return hits


def move_accounting(journal: list[int], decided: list[int]) -> tuple[list[int], list[int]]:
    """(steps journaled more than once, steps recorded as executed but not journaled) — the
    latter only over what the journal still holds (rotation drops its oldest lines)."""
    doubled = sorted({k for k in journal if journal.count(k) > 1})
    floor = min(journal) if journal else 0
    held = set(journal)
    lost = sorted({k for k in decided if k >= floor and k not in held})
    return doubled, lost


@dataclass
class Fit:
    """One process's RSS fitted over its plateau: the whole plateau's slope (reported) and
    the lesser of its two halves' slopes (judged, against the bound for a half). A leak grows
    in both halves; a one-time step (an allocator arena, a cache filled once) in one only."""

    name: str
    slope_kb_h: float
    bound_kb_h: float
    lo: int
    hi: int
    n: int
    span_s: float
    steady_kb_h: float = 0.0

    @property
    def flat(self) -> bool:
        return self.steady_kb_h <= self.bound_kb_h


def memory_fits(samples: Sequence[HasRss], run_s: float) -> list[Fit]:
    """A least squares slope for every process that lived PLATEAU_SHARE of the run, over its
    samples after WARMUP_S of its life (or a quarter of the run, when shorter)."""
    series: dict[str, list[tuple[float, int]]] = {}
    for x in samples:
        for name, kb in x.rss.items():
            series.setdefault(name, []).append((x.t, kb))
    warm = min(WARMUP_S, run_s / 4)
    fits = []
    for name, pts in sorted(series.items()):
        born = pts[0][0]
        plateau = [(t, kb) for t, kb in pts if t >= born + warm]
        if len(plateau) < 5:
            continue
        span = plateau[-1][0] - plateau[0][0]
        if span < PLATEAU_SHARE * run_s - warm:
            continue
        xs, ys = [t for t, _ in plateau], [float(kb) for _, kb in plateau]
        half = len(plateau) // 2
        halves = [
            slope_per_hour(xs[:half], ys[:half]),
            slope_per_hour(xs[half:], ys[half:]),
        ]
        hours = max(span, 1.0) / 3600 / 2  # the bound for one half's span
        noise = MEM_NOISE_KB * max(1.0, MEM_MIN_RUN_S / max(run_s, 1.0))
        fits.append(
            Fit(
                name,
                slope_per_hour(xs, ys),
                MEM_KB_H + noise / hours,
                min(kb for _, kb in plateau),
                max(kb for _, kb in plateau),
                len(plateau),
                span,
                min(halves),
            )
        )
    return fits


Row = tuple[str, bool, str]


def caps(samples: list[Sample]) -> list[Row]:
    """Every file under its cap in every sample (a cap broken mid-run and healed by the end
    is still broken)."""
    out: list[Row] = []
    sizes: list[tuple[str, int, int, Callable[[Sample], int]]] = [
        ("events.jsonl", EVENTS_CAP, 4096, lambda x: x.events_b),
        ("journal.md", JOURNAL_CAP, 4096, lambda x: x.journal_b),
        ("runs/", RUNS_KEEP, 2, lambda x: x.runs),
    ]
    for name, cap, slack, get in sizes:
        worst = max(samples, key=get)
        over = sum(1 for x in samples if get(x) > cap + slack)
        out.append(
            (
                f"{name} under its cap in every sample",
                over == 0,
                f"max {get(worst)} at {worst.t:.0f} s (cap {cap}); "
                f"{over} of {len(samples)} samples over",
            )
        )
    return out


def zombie_check(samples: list[Sample]) -> Row:
    """A zombie is reaped within a sample or two: more than ZOMBIES_AT_ONCE at once in the
    second half, or any at the end, is one nobody reaps."""
    late = samples[len(samples) // 2 :]
    most = max(x.zombies for x in late)
    return (
        "no zombie lingers",
        late[-1].zombies == 0 and most <= ZOMBIES_AT_ONCE,
        f"max {most} in the 2nd half, {late[-1].zombies} at the end "
        f"(max {max(x.zombies for x in samples)} over the run)",
    )


def memory_checks(fits: list[Fit]) -> list[Row]:
    out: list[Row] = []
    for role in ("pulse", "supervisor", "host", "web"):
        mine = [x for x in fits if x.name.startswith(role + ":")]
        worst = max(mine, key=lambda x: x.steady_kb_h - x.bound_kb_h, default=None)
        if worst is None:
            out.append((f"{role} memory flat", False, "no process lived long enough to fit"))
            continue
        out.append(
            (
                f"{role} memory flat (least squares, both halves, each of {len(mine)})",
                all(x.flat for x in mine),
                f"worst {worst.name.split(':')[0]} {worst.steady_kb_h:+.0f} kB/h in its "
                f"flatter half (bound {worst.bound_kb_h:.0f}; {worst.slope_kb_h:+.0f} kB/h "
                f"over all {worst.span_s / 60:.0f} min), {worst.lo}..{worst.hi} kB",
            )
        )
    return out


def check(s: Soak, after_down: dict[str, object]) -> list[Row]:
    out: list[tuple[str, bool, str]] = []
    tb = _tracebacks(s.data)
    out.append(("no traceback in the data dir", not tb, ", ".join(tb[:5]) or "none"))
    tb = _tracebacks(s.runtime)
    out.append(("no traceback in the hosts' own logs", not tb, ", ".join(tb[:5]) or "none"))
    s.follow()
    journal, decided = s.journaled, s.decided
    doubled, lost = move_accounting(journal, decided)
    files = "+".join(str(f.files) for f in s.follows)
    out.append(
        (
            "no move journaled twice (the whole run)",
            not doubled,
            f"doubled: {doubled[:10]}"
            if doubled
            else f"{len(journal)} moves journaled, read as written ({files} files)",
        )
    )
    out.append(
        (
            "no executed move missing from the journal (the whole run)",
            not lost and len(decided) > 0,
            f"lost: {lost[:10]}" if lost else f"{len(decided)} decided",
        )
    )
    for f in s.faults:
        limit = RECOVERY_S[f.name]
        ok = bool(f.verified) and f.recovered_s is not None and f.recovered_s <= limit
        detail = f"{f.recovered_s} s; {f.verified or 'NOT INJECTED'}; {f.note}".strip("; ")
        out.append((f"fault: {f.name} (<= {limit} s)", ok, detail))
    ran = {f.name for f in s.faults}
    if s.planned is not None and s.planned < len(FAULTS):  # SOAK_FAULTS picked: each ran
        missing = [] if len(ran) >= s.planned else [f"{s.planned - len(ran)} of {s.planned}"]
    else:
        missing = [name for name in RECOVERY_S if name not in ran]
    out.append(("every fault ran", not missing, ", ".join(missing) or f"{len(ran)} faults"))
    logged = after_down.get("pulse_logged", (0, 0))
    assert isinstance(logged, tuple)
    out.append(
        (
            "the pulse's log records its beats to the end",
            logged[1] > logged[0],
            f"{logged[0]} -> {logged[1]} `next beat in` lines over the last "
            f"{LOG_CHECK_S:.0f} s ({s.beats()} beats in the events over the run)",
        )
    )
    last = s.samples[-1]
    out += caps(s.samples)
    out.append(zombie_check(s.samples))
    calm = [x for x in s.samples if not x.in_fault] or s.samples
    mid = calm[len(calm) // 3 : 2 * len(calm) // 3] or calm
    end = calm[2 * len(calm) // 3 :] or calm
    out.append(
        (
            # the floor: a sample taken mid-decide holds the runner's pipes and the beat's
            # files for a moment; a leak raises every sample after it
            "pulse fds flat (least of the last third vs of the middle third)",
            min(x.fds for x in end) <= min(x.fds for x in mid) + 4,
            f"{min(x.fds for x in mid)} -> {min(x.fds for x in end)} (most: "
            f"{max(x.fds for x in mid)} -> {max(x.fds for x in end)})",
        )
    )
    out += memory_checks(memory_fits(s.mem, s.samples[-1].t))
    out.append(
        (
            "one session host at a time",
            max(x.hosts for x in calm) == 1 and min(x.hosts for x in calm) >= 1,
            f"{min(x.hosts for x in calm)}..{max(x.hosts for x in calm)} outside faults",
        )
    )
    web_fail = sum(1 for x in calm if not x.web_ok)
    out.append(
        (
            "the web answers",
            web_fail == 0 and last.web_ok,
            f"{web_fail} of {len(calm)} samples outside faults failed",
        )
    )
    out.append(
        (
            "no dead socket in the runtime dir",
            max(x.dead_sockets for x in calm) == 0,
            f"max {max(x.dead_sockets for x in calm)} outside faults, "
            f"{max(x.sockets for x in s.samples)} live at most",
        )
    )
    orphans = after_down.get("supervisors_without_session", [])
    headless = after_down.get("sessions_without_supervisor", [])
    out.append(
        (
            "every live session has its supervisor, every supervisor a live session",
            not orphans and not headless,
            f"without a session: {orphans}; without a supervisor: {headless}"
            if orphans or headless
            else f"{after_down.get('live_sessions')} live sessions at the end",
        )
    )
    out.append(
        (
            "the pulse runs at the end",
            bool(after_down.get("pulse_running")),
            f"pid {last.pulse_pid}",
        )
    )
    left = after_down.get("left", [])
    out.append(
        (
            "nothing of the home runs after `looop down`",
            not left,
            f"left: {left}" if left else "none",
        )
    )
    dead = after_down.get("dead_sockets", 0)
    out.append(("no dead socket after `looop down`", dead == 0, f"{dead} dead"))
    return out


def end_state(s: Soak) -> dict[str, object]:
    """What must hold just before `down`: each live session with its supervisor, and back."""
    from looop.sessions.state import list_sessions

    before = s.beats_logged()
    s.wait(LOG_CHECK_S)  # the pulse beats meanwhile: its log must say so
    logged = (before, s.beats_logged())
    sessions = [x for x in list_sessions(s.data) if x.alive]
    sups = set(s.roles().get("supervisor", []))
    claimed = {x.supervisor_pid for x in sessions if x.supervisor_pid}
    return {
        "live_sessions": len(sessions),
        "sessions_without_supervisor": [
            x.id for x in sessions if not x.supervisor_pid or not _alive(x.supervisor_pid)
        ],
        "supervisors_without_session": sorted(sups - claimed),
        "pulse_running": bool(s.pulse_status().get("running")),
        "pulse_logged": logged,
    }


def after_down(s: Soak, state: dict[str, object]) -> dict[str, object]:
    """`looop down`, then what is left of the home: processes (the session host may idle
    on; it is stopped by name afterwards) and sockets nobody listens on."""
    s.looop("down", timeout=120)
    deadline = time.monotonic() + 15
    left: list[str] = []
    while True:
        roles = s.roles()
        pids = set(s.home_pids()) - set(roles.get("host", []))
        left = [f"{_cmd(p)} ({p})" for p in sorted(pids) if _alive(p)]
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    _, dead = _sockets(s.runtime)
    return {**state, "left": left, "dead_sockets": dead}


def _cmd(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:60]
    return "?"


# What the checks do and the deliberate break that proves each can fail: part of every report.
HOW_CHECKED = """## How the checks can fail

- **No move journaled twice / none missing** (the whole run): the driver follows journal.md and
  events.jsonl as they grow (bench/soak_follow.py holds each file open through its rotation to
  `.1`, and reads a `.1` it never held whole), so a move doubled at minute 1 of an hour is seen
  though the capped journal dropped it long before the end. Break: a move replayed early
  (tests/integration/test_soak_breaks.py; tests/unit/test_soak_accounting.py replays one and
  rotates it out of the kept files).
- **No zombie lingers**: a zombie is counted by its state (Z in /proc/PID/stat) and its parent
  being one of the home's processes (a zombie's own environment cannot be read, so the old
  check never counted one); more than 2 at once in the second half, or any at the end, fails.
  Break: a worker leaving a zombie every beat (tests/fixtures/zombie_maker.py).
- **Memory flat**, judged in every run: RSS of the pulse, supervisors, hosts and web sampled
  every 5 s, faults included; the noise allowance grows as the run shortens (below 20 min).
  Break: `LOOOP_SOAK_LEAK_KB=1024`, a pulse keeping a MB more every beat.
- **Caps** (events.jsonl, journal.md, runs/) are checked on every sample, not the last only
  (tests/unit/test_soak_accounting.py: a cap broken mid-run fails).
- **Long faults**: the disk full, the data dir read-only and the clock an hour ahead each last
  3 minutes in an hour's run (a twentieth of a shorter one, at least 3 beats): the same pulse
  must ride each out (no restart, no watchdog stop) and decide again within 6 beats of a
  human's goal written as it ends (the soak's counter is volatile: after a noop nothing else
  need change the world); a clock fault also after the clock steps back to real time.
  Beats are counted from the pulse_sleep events the driver follows, not the pulse's log
  (which can stop: next check).
- **The pulse's log records its beats to the end**: over the last 15 s before `down` the
  pulse's output.log (with its rotations) gains `next beat in` lines. Break: the disk-full
  fault when a log write hits the full disk — the session supervisor stops writing a log
  whose write failed once, for the rest of its life (sessions/pump.py `log_failed`).
"""


def report(s: Soak, minutes: float, checks: list[tuple[str, bool, str]]) -> str:
    second = s.samples[len(s.samples) // 2 :]
    sx = [x.t for x in second]

    def row(name: str, get: Callable[[Sample], float], unit: str) -> str:
        vals = [get(x) for x in s.samples]
        slope = slope_per_hour(sx, [get(x) for x in second])
        spread = f"{vals[0]:.0f} | {statistics.median(vals):.0f} | {max(vals):.0f} | {vals[-1]:.0f}"
        return f"| {name} | {spread} | {slope:+.0f} {unit}/h |"

    pos = s.script.with_name(s.script.name + ".pos")
    asked = int(pos.read_text().strip() or "0") if pos.exists() else 0  # runner calls, unrotated
    hours = (s.samples[-1].t if s.samples else 1) / 3600
    where = (
        f"a {TMPFS_MB} MB tmpfs"
        if s.tmpfs
        else "the disk (no tmpfs could be mounted: the disk-full and read-only faults fail)"
    )
    fits = memory_fits(s.mem, s.samples[-1].t)
    lines = [
        "# Soak",
        "",
        f"Produced by `make soak` (`SOAK_MINUTES={minutes:g}`, `python bench/soak.py`) on "
        f"{time.strftime('%Y-%m-%d')}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs: "
        f"the real pulse with {BEAT_S} s beats, the web beside it, {STEADY_WORKERS} idle "
        f"workers and the scripted runner, {asked} decides (runner calls; ~{asked / hours:.0f} "
        f"an hour), data dir on {where}, clock "
        f"{'through libfaketime' if s.faketime else 'untouched (no libfaketime)'}. "
        "Every fault is verified by its effect before its recovery is timed; every figure "
        "below is checked in the last table.",
        "",
        "| sample | first | median | max | last | growth (2nd half) |",
        "|---|---|---|---|---|---|",
        row("pulse fds", lambda x: x.fds, "fds"),
        row("home processes", lambda x: x.procs, "procs"),
        row("zombies", lambda x: x.zombies, ""),
        row("session hosts", lambda x: x.hosts, ""),
        row("live sockets (runtime dir)", lambda x: x.sockets, ""),
        row("events.jsonl (B)", lambda x: x.events_b, "B"),
        row("journal.md (B)", lambda x: x.journal_b, "B"),
        row("runs/ entries", lambda x: x.runs, ""),
        row("asks answered (total)", lambda x: x.answered, ""),
        row("`looop status` (ms)", lambda x: x.status_ms, "ms"),
        "",
        f"Memory: RSS per process, a least squares slope over its samples after "
        f"{min(WARMUP_S, s.samples[-1].t / 4) / 60:.0f} min of its life, for every process "
        f"that lived {PLATEAU_SHARE:.0%} of the run, and over each half of them; judged on the "
        f"flatter half (a leak grows in both, a one-time step in one); bound "
        f"{MEM_KB_H:.0f} kB/h plus "
        f"{MEM_NOISE_KB * max(1.0, MEM_MIN_RUN_S / max(s.samples[-1].t, 1.0)):.0f} kB over a "
        f"half ({MEM_NOISE_KB:.0f} kB in a run of {MEM_MIN_RUN_S // 60} min or more, more in "
        "a shorter one: warm-up weighs more). Sampled every "
        f"{SAMPLE_S:.0f} s, faults included.",
        "",
        "| process | slope (kB/h) | flatter half (kB/h) | bound (kB/h) | min (kB) | max (kB) "
        "| samples | plateau (min) |",
        "|---|---|---|---|---|---|---|---|",
        *(
            f"| {x.name.split(':')[0]} (pid {x.name.split(':')[1]}) | {x.slope_kb_h:+.0f} | "
            f"{x.steady_kb_h:+.0f} | "
            f"{x.bound_kb_h:.0f} | {x.lo} | {x.hi} | {x.n} | {x.span_s / 60:.0f} |"
            for x in fits
        ),
        "",
        "| fault | at (s) | recovered after (s) | allowed (s) | verified by | note |",
        "|---|---|---|---|---|---|",
        *(
            f"| {f.name} | {f.at:.0f} | {f.recovered_s} | {RECOVERY_S[f.name]} | "
            f"{f.verified or 'NOT INJECTED'} | {f.note} |"
            for f in s.faults
        ),
        "",
        "| invariant | held | detail |",
        "|---|---|---|",
        *(f"| {name} | {'yes' if ok else 'NO'} | {detail} |" for name, ok, detail in checks),
        "",
        HOW_CHECKED,
    ]
    return "\n".join(lines)


def keep_evidence(s: Soak) -> None:
    """What a broken invariant points at, copied out of the (tmpfs) data dir before it goes:
    crash reports, files holding a traceback, the events, the pulse's and the hosts' logs."""
    out = s.root / "evidence"
    names = {hit.split(": ", 1)[0] for hit in _tracebacks(s.data)}
    names |= {"events.jsonl", "events.jsonl.1", "journal.md", "sessions/pulse/output.log"}
    for name in sorted(names):
        src = s.data / name
        if src.is_file():
            dst = out / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):
                shutil.copy2(src, dst)
    print(f"soak: evidence kept in {out} (runtime dir: {s.runtime})", flush=True)


def teardown(s: Soak, downed: bool = False) -> None:
    """Whatever the soak left: its pulse and workers, hosts, the clock's holder, the mount."""
    if not downed:
        s.looop("down", timeout=120)
    roles = s.roles()
    for host in roles.get("host", []):
        with contextlib.suppress(OSError):
            os.kill(host, signal.SIGTERM)
    if s.holder is not None:
        release_shared_clock(s.holder)
    if s.tmpfs:
        _remount(s.data, "rw")
        subprocess.run(["umount", "-l", str(s.data)], check=False)


Inject = Callable[[Soak], Fault]


def drive(
    s: Soak,
    minutes: float,
    faults: tuple[tuple[float, Inject], ...],
    beat: Callable[[], None] = lambda: None,
    more: Callable[[], bool] = lambda: False,
) -> None:
    """Sample the home for `minutes`, injecting each fault at its share of the run (a fault
    due is injected even past the end). `beat`: run before each sample (a test's break);
    `more`: the run goes on past its minutes while it holds (beats a loaded machine made
    fewer of in the time)."""
    s.t0 = time.monotonic()
    end = s.t0 + minutes * 60
    pending = list(faults)
    while time.monotonic() < end or pending or more():
        beat()
        s.answer_asks()
        s.samples.append(s.sample())
        s.samples[-1].answered = s.answered
        if pending and time.monotonic() - s.t0 >= pending[0][0] * minutes * 60:
            _, inject = pending.pop(0)
            s.in_fault = True
            try:
                fault = inject(s)
            finally:
                s.in_fault = False
            s.faults.append(fault)
            print(
                f"soak: {fault.name}: recovered after {fault.recovered_s} s "
                f"({fault.verified or 'NOT INJECTED'}) {fault.note}",
                flush=True,
            )
            # the next sample waits a beat: what the fault left settles first
            s.wait(min(SAMPLE_S, BEAT_S))
        else:
            s.wait(SAMPLE_S)
    s.samples.append(s.sample())
    s.samples[-1].answered = s.answered


def pick_faults(raw: str) -> tuple[tuple[float, Inject], ...]:
    """SOAK_FAULTS: a comma list of the faults to inject by their key (`fault_<key>`:
    clock_forward, disk, ...), each at its share of the run; empty: all of them."""
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    known = {fn.__name__.removeprefix("fault_"): (at, fn) for at, fn in FAULTS}
    wrong = [k for k in keys if k not in known]
    if wrong:
        raise ValueError(f"no fault {wrong[0]!r}: pick from {', '.join(known)}")
    return tuple(known[k] for k in known if k in keys) if keys else FAULTS


def run(
    minutes: float, write: Path | None, faults: tuple[tuple[float, Inject], ...] = FAULTS
) -> tuple[bool, str]:
    """One soak of `minutes`: (every invariant held, the report)."""
    s = setup(minutes)
    s.planned = len(faults)
    print(f"soak: {minutes:g} min in {s.root} (tmpfs: {s.tmpfs})", flush=True)
    text = ""
    checks: list[tuple[str, bool, str]] = []
    downed = False
    try:
        up = s.looop("up", timeout=120)
        if up.returncode != 0:
            print(f"soak: looop up failed: {up.stderr.strip()}", file=sys.stderr)
            return False, ""
        s.start_steady()
        drive(s, minutes, faults)
        state = after_down(s, end_state(s))
        downed = True
        checks = check(s, state)
        text = report(s, minutes, checks)
    finally:
        keep_evidence(s)
        teardown(s, downed)
    print(text)
    if write is not None:
        write.write_text(text)
    broken = [name for name, ok, _ in checks if not ok]
    if broken:
        print(f"soak: {len(broken)} invariant(s) broke: {'; '.join(broken)}", file=sys.stderr)
        return False, text
    shutil.rmtree(s.root, ignore_errors=True)
    return True, text


def main() -> int:
    raw = os.environ.get("SOAK_MINUTES", "30")
    try:
        minutes = float(raw)
    except ValueError:
        minutes = -1.0
    if minutes <= 0:
        print(f"soak: SOAK_MINUTES={raw}: give a positive number of minutes", file=sys.stderr)
        return 2
    if not beat_s(os.environ.get("SOAK_BEAT_S")):
        print(
            f"soak: SOAK_BEAT_S={os.environ['SOAK_BEAT_S']}: give whole seconds, 1 to 60",
            file=sys.stderr,
        )
        return 2
    try:
        faults = pick_faults(os.environ.get("SOAK_FAULTS", ""))
    except ValueError as e:
        print(f"soak: SOAK_FAULTS: {e}", file=sys.stderr)
        return 2
    out = os.environ.get("SOAK_REPORT", str(REPO / "docs" / "SOAK.md"))
    ok, _ = run(minutes, Path(out) if out else None, faults)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
