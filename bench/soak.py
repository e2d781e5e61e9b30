"""`make soak`: the pulse under load and injected faults for SOAK_MINUTES (default 10).

A throwaway data dir (on a small tmpfs when this machine lets us mount one) runs the real
`looop up` pulse with 5 s beats and the shipped scripted runner, which hands out a move on
every beat: workers started, steered and killed, schedules written and dropped, goals written
and archived, shell runs, asks. A counter sensor changes every beat, a flapping sensor flips.
Faults come on a timetable: a worker's supervisor SIGKILLed, the pulse SIGKILLed and `looop
up` again, state files corrupted, a runner that hangs, the disk filled (tmpfs only). Every
5 s the driver samples the pulse's RSS and fds, looop's processes and zombies, the sizes of
events, journal and runs, the host sockets, and how long `looop status` takes.

At the end it checks the invariants — no traceback anywhere, no move lost or doubled
(journal against the `decided` records), every fault recovered within its stated time, every
file under its cap, fds and memory flat — prints a table with the growth per hour, writes it
to docs/SOAK.md and exits 1 when an invariant broke.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LOOOP = str(Path(sys.executable).parent / "looop")
BEAT_S = 5
SAMPLE_S = 5.0
TICK_TIMEOUT_S = 8
JOURNAL_CAP = 2_048  # small, so a soak of minutes sees the journal and events rotate
EVENTS_CAP = 24_000
RUNS_KEEP = 12
TMPFS_MB = 48
# Each fault and how long the loop may take to be whole again after it.
RECOVERY_S = {
    "worker supervisor SIGKILLed": 3 * BEAT_S + 10,
    "pulse SIGKILLed, looop up again": 15,
    "state files corrupted": 6 * BEAT_S,
    "guard file corrupted, fixed as told": 6 * BEAT_S,
    "runner hangs": TICK_TIMEOUT_S + 60,
    "disk full": 60,
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


@dataclass
class Sample:
    t: float
    pulse_pid: int | None
    rss_kb: int
    fds: int
    procs: int
    zombies: int
    events_b: int
    journal_b: int
    runs: int
    sockets: int
    status_ms: float
    answered: int = 0


@dataclass
class Fault:
    name: str
    at: float
    recovered_s: float | None = None
    note: str = ""


@dataclass
class Soak:
    root: Path
    data: Path
    env: dict[str, str]
    script: Path
    tmpfs: bool = False
    samples: list[Sample] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    t0: float = 0.0
    answered: int = 0

    def answer_asks(self) -> None:
        """A human answering what the workers ask, as they come."""
        r = self.looop("asks", "--json")
        with contextlib.suppress(ValueError):
            for ask in json.loads(r.stdout or "[]"):
                live = isinstance(ask, dict) and str(ask.get("status", "")).upper() == "LIVE"
                if live and self.looop("answer", str(ask.get("id")), "yes").returncode == 0:
                    self.answered += 1

    # ---- the CLI
    def looop(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [LOOOP, *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def status(self) -> dict[str, object]:
        r = self.looop("status", "--json")
        try:
            out = json.loads(r.stdout)
        except ValueError:
            return {}
        return out if isinstance(out, dict) else {}

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

    # ---- sampling
    def sample(self) -> Sample:
        pid = self.pulse_pid()
        rss = fds = 0
        if pid:
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        rss = int(line.split()[1])
                fds = len(os.listdir(f"/proc/{pid}/fd"))
        procs, zombies = _looop_processes(self.data)
        t = time.monotonic()
        self.looop("status")
        status_ms = (time.monotonic() - t) * 1000
        runs = self.data / "runs"
        from looop.sessions.state import socket_path

        sock_dir = socket_path(self.data, "pulse").parent  # this data dir's sockets only
        return Sample(
            t=time.monotonic() - self.t0,
            pulse_pid=pid,
            rss_kb=rss,
            fds=fds,
            procs=procs,
            zombies=zombies,
            events_b=_size(self.data / "events.jsonl"),
            journal_b=_size(self.data / "journal.md"),
            runs=len(list(runs.iterdir())) if runs.is_dir() else 0,
            sockets=len(list(sock_dir.iterdir())) if sock_dir.is_dir() else 0,
            status_ms=status_ms,
        )

    # ---- waiting for recovery
    def recover(self, fault: Fault, ok: Callable[[], bool]) -> None:
        limit = RECOVERY_S[fault.name]
        start = time.monotonic()
        while time.monotonic() - start < limit + 30:
            if ok():
                fault.recovered_s = round(time.monotonic() - start, 1)
                return
            time.sleep(1.0)
        fault.note = fault.note or "never recovered"

    def next_decide(self) -> Callable[[], bool]:
        return self.after("decided")

    def after(self, event: str) -> Callable[[], bool]:
        """`event` recorded from now on (by its stamp: a count shrinks when events rotate)."""
        since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        return lambda: any(str(r.get("ts", "")) >= since for r in self.records(event))


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except OSError:
        return 0


def _looop_processes(data: Path) -> tuple[int, int]:
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
            stat = Path(f"/proc/{d}/stat").read_text()
            env = Path(f"/proc/{d}/environ").read_bytes()
        except OSError:
            continue
        rest = stat.rsplit(")", 1)[1].split()
        states[pid], parents[pid] = rest[0], int(rest[1])
        if f"LOOOP_DATA_DIR={data}".encode() in env:
            mine.add(pid)
    zombies = sum(1 for p, s in states.items() if s == "Z" and parents.get(p) in mine)
    return len(mine), zombies


def _mount_tmpfs(data: Path) -> bool:
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_MB}m,mode=0700", "tmpfs", str(data)],
        capture_output=True,
        check=False,
    )
    return r.returncode == 0


def setup(minutes: float) -> Soak:
    root = Path(tempfile.mkdtemp(prefix="looop-soak-"))
    data = root / "data"
    data.mkdir()
    tmpfs = _mount_tmpfs(data)
    beats = int(minutes * 60 / BEAT_S) + 200
    script = root / "script.json"
    script.write_text(json.dumps([{"decision": _moves(k)} for k in range(beats)]))
    runner = f"{sys.executable} -m looop.demo.runner --script {script}"
    cfg = {
        "default": "scripted",
        "runners": {"scripted": {"tick": runner, "worker": WORKER}},
        "max_daily_usd": 0,
        "interval": BEAT_S,
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
        "LOOOP_TICK_TIMEOUT_SECS": str(TICK_TIMEOUT_S),
        "LOOOP_JOURNAL_MAX_BYTES": str(JOURNAL_CAP),
        "LOOOP_EVENTS_MAX_BYTES": str(EVENTS_CAP),
        "LOOOP_RUNS_KEEP": str(RUNS_KEEP),
        "LOOOP_MAX_DECIDES_PER_HOUR": "0",
        "LOOOP_BACKOFF_MAX_SECS": "20",
        "LOOOP_SESSION_TTL": "120",
        "LOOOP_MAX_WORKERS": "8",
    }
    return Soak(root=root, data=data, env=env, script=script, tmpfs=tmpfs)


# ---- the faults


def fault_worker(s: Soak) -> Fault:
    f = Fault("worker supervisor SIGKILLed", time.monotonic() - s.t0)
    from looop.sessions import list_sessions

    live = [x for x in list_sessions(s.data) if x.alive and x.id != "pulse" and x.supervisor_pid]
    if not live:
        f.note = "no live worker to kill"
        f.recovered_s = 0.0
        return f
    victim = live[0]
    assert victim.supervisor_pid is not None
    os.kill(victim.supervisor_pid, signal.SIGKILL)
    status = s.data / "sessions" / victim.id / "status.json"

    def marked() -> bool:
        with contextlib.suppress(OSError, ValueError):
            return json.loads(status.read_text()).get("state") == "killed"
        return not status.exists()  # reaped meanwhile: recorded and gone

    s.recover(f, marked)
    f.note = f.note or f"worker {victim.id}"
    return f


def fault_pulse(s: Soak) -> Fault:
    f = Fault("pulse SIGKILLed, looop up again", time.monotonic() - s.t0)
    from looop.sessions import get_session

    pulse = get_session(s.data, "pulse")
    before = (s.data / "sessions" / "pulse" / "output.log").read_bytes()
    for pid in (s.pulse_pid(), pulse.supervisor_pid):
        if pid:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    s.looop("up")
    s.recover(f, lambda: bool((s.status().get("pulse") or {}).get("running")))  # type: ignore[union-attr]
    kept = s.data / "sessions" / "pulse" / "log" / "output.log.1"
    if not kept.exists() or not kept.read_bytes().startswith(before[:4096]):
        f.note = "the dead pulse's log was not kept"
        f.recovered_s = None
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
    s.recover(f, s.next_decide())
    (sched / "broken.json").unlink(missing_ok=True)
    return f


def fault_guard(s: Soak) -> Fault:
    """The committed world hash: the loop fails closed (idles and names the fix); the soak
    then does what it says, and the loop must decide again."""
    f = Fault("guard file corrupted, fixed as told", time.monotonic() - s.t0)
    guard = s.data / ".last-tick-hash"
    reported = s.after("guard_corrupt")
    guard.write_text("\x00garbage{")
    start = time.monotonic()
    while not reported() and time.monotonic() - start < 4 * BEAT_S:
        time.sleep(1.0)
    if not reported():
        f.note = "the loop never reported the corrupt guard"
        return f
    guard.unlink(missing_ok=True)  # the fix the loop named
    s.recover(f, s.next_decide())
    return f


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
        f.recovered_s = 0.0
        return f
    filler = s.data / "filler.bin"
    with contextlib.suppress(OSError), open(filler, "wb") as out:
        chunk = b"\0" * (1 << 20)
        while True:
            out.write(chunk)
            out.flush()
    time.sleep(2 * BEAT_S)
    filler.unlink(missing_ok=True)
    s.recover(f, s.next_decide())
    return f


FAULTS = (
    (0.15, fault_worker),
    (0.28, fault_pulse),
    (0.40, fault_corrupt),
    (0.50, fault_guard),
    (0.62, fault_hang),
    (0.78, fault_disk),
)


# ---- invariants and the report


def _tracebacks(data: Path) -> list[str]:
    hits: list[str] = []
    for p in data.rglob("*"):
        if not p.is_file() or p.suffix in (".bin",) or p.stat().st_size > 64 << 20:
            continue
        with contextlib.suppress(OSError):
            if b"Traceback (most recent call last)" in p.read_bytes():
                hits.append(str(p.relative_to(data)))
    return hits


def _journal_markers(data: Path) -> list[int]:
    out: list[int] = []
    for f in (data / "journal.md.1", data / "journal.md"):
        with contextlib.suppress(OSError):
            out += [int(m) for m in re.findall(r"soak step (\d+)\b", f.read_text())]
    return out


def move_accounting(journal: list[int], decided: list[int]) -> tuple[list[int], list[int]]:
    """(steps journaled more than once, steps recorded as executed but not journaled) — the
    latter only over what the journal still holds (rotation drops its oldest lines)."""
    doubled = sorted({k for k in journal if journal.count(k) > 1})
    floor = min(journal) if journal else 0
    held = set(journal)
    lost = sorted({k for k in decided if k >= floor and k not in held})
    return doubled, lost


def _slope_per_hour(xs: list[float], ys: list[float]) -> float:
    if len(xs) < 3:
        return 0.0
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return (
        0.0
        if den == 0
        else sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den * 3600
    )


def check(s: Soak) -> list[tuple[str, bool, str]]:
    out: list[tuple[str, bool, str]] = []
    tb = _tracebacks(s.data)
    out.append(("no traceback in any file", not tb, ", ".join(tb[:5]) or "none"))
    journal = _journal_markers(s.data)
    decided = [
        int(m.group(1))
        for r in s.records("decided")
        if (m := re.search(r"soak step (\d+)\b", str(r.get("journal", ""))))
    ]
    doubled, lost = move_accounting(journal, decided)
    out.append(
        (
            "no move journaled twice",
            not doubled,
            f"doubled: {doubled[:10]}" if doubled else f"{len(journal)} lines",
        )
    )
    out.append(
        (
            "no executed move missing from the journal",
            not lost,
            f"lost: {lost[:10]}" if lost else f"{len(decided)} decided in the kept events",
        )
    )
    for f in s.faults:
        limit = RECOVERY_S[f.name]
        ok = f.recovered_s is not None and f.recovered_s <= limit
        out.append(
            (f"recovered: {f.name} (<= {limit} s)", ok, f"{f.recovered_s} s {f.note}".strip())
        )
    last = s.samples[-1]
    out.append(
        (
            "events.jsonl under its cap",
            last.events_b <= EVENTS_CAP + 4096,
            f"{last.events_b} B (cap {EVENTS_CAP})",
        )
    )
    out.append(
        (
            "journal.md under its cap",
            last.journal_b <= JOURNAL_CAP + 4096,
            f"{last.journal_b} B (cap {JOURNAL_CAP})",
        )
    )
    out.append(
        (
            "runs/ under its cap",
            max(x.runs for x in s.samples) <= RUNS_KEEP + 2,
            f"max {max(x.runs for x in s.samples)} (keep {RUNS_KEEP})",
        )
    )
    late = s.samples[len(s.samples) // 2 :]
    out.append(
        (
            "no zombie lingers",
            late[-1].zombies == 0 and max(x.zombies for x in late) <= 2,
            f"max {max(x.zombies for x in late)} in the 2nd half, {late[-1].zombies} at the end",
        )
    )
    mid = s.samples[len(s.samples) // 3 : 2 * len(s.samples) // 3] or s.samples
    end = s.samples[2 * len(s.samples) // 3 :] or s.samples
    fd_ok = max(x.fds for x in end) <= max(x.fds for x in mid) + 4
    out.append(
        (
            "pulse fds flat (last third vs middle third)",
            fd_ok,
            f"{max(x.fds for x in mid)} -> {max(x.fds for x in end)}",
        )
    )
    rss_ok = (
        statistics.median(x.rss_kb for x in end)
        <= statistics.median(x.rss_kb for x in mid) * 1.15 + 2048
    )
    out.append(
        (
            "pulse memory flat (median, last third vs middle third)",
            rss_ok,
            f"{statistics.median(x.rss_kb for x in mid):.0f} -> "
            f"{statistics.median(x.rss_kb for x in end):.0f} kB",
        )
    )
    out.append(
        (
            "the pulse runs at the end",
            bool(last.pulse_pid) and bool((s.status().get("pulse") or {}).get("running")),
            f"pid {last.pulse_pid}",
        )
    )  # type: ignore[union-attr]
    return out


def report(s: Soak, minutes: float, checks: list[tuple[str, bool, str]]) -> str:
    xs = [x.t for x in s.samples]
    second = s.samples[len(s.samples) // 2 :]
    sx = [x.t for x in second]

    def row(name: str, get: Callable[[Sample], float], unit: str) -> str:
        vals = [get(x) for x in s.samples]
        slope = _slope_per_hour(sx, [get(x) for x in second])
        spread = f"{vals[0]:.0f} | {statistics.median(vals):.0f} | {max(vals):.0f} | {vals[-1]:.0f}"
        return f"| {name} | {spread} | {slope:+.0f} {unit}/h |"

    pos = s.script.with_name(s.script.name + ".pos")
    asked = int(pos.read_text().strip() or "0") if pos.exists() else 0  # runner calls, unrotated
    hours = (xs[-1] if xs else 1) / 3600
    where = (
        f"a {TMPFS_MB} MB tmpfs"
        if s.tmpfs
        else "the disk (no tmpfs could be mounted: the disk-full fault is skipped)"
    )
    lines = [
        "# Soak",
        "",
        f"Produced by `make soak` (`SOAK_MINUTES={minutes:g}`, `python bench/soak.py`) on "
        f"{time.strftime('%Y-%m-%d')}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs: "
        f"the real pulse with {BEAT_S} s beats and the scripted runner, "
        f"{asked} decides (runner calls; ~{asked / hours:.0f} an hour), "
        f"data dir on {where}.",
        "",
        "| sample | first | median | max | last | growth (2nd half) |",
        "|---|---|---|---|---|---|",
        row("pulse RSS (kB)", lambda x: x.rss_kb, "kB"),
        row("pulse fds", lambda x: x.fds, "fds"),
        row("looop processes", lambda x: x.procs, "procs"),
        row("zombies", lambda x: x.zombies, ""),
        row("events.jsonl (B)", lambda x: x.events_b, "B"),
        row("journal.md (B)", lambda x: x.journal_b, "B"),
        row("runs/ entries", lambda x: x.runs, ""),
        row("session sockets", lambda x: x.sockets, ""),
        row("asks answered (total)", lambda x: x.answered, ""),
        row("`looop status` (ms)", lambda x: x.status_ms, "ms"),
        "",
        "| fault | at (s) | recovered after (s) | allowed (s) | note |",
        "|---|---|---|---|---|",
        *(
            f"| {f.name} | {f.at:.0f} | {f.recovered_s} | {RECOVERY_S[f.name]} | {f.note} |"
            for f in s.faults
        ),
        "",
        "| invariant | held | detail |",
        "|---|---|---|",
        *(f"| {name} | {'yes' if ok else 'NO'} | {detail} |" for name, ok, detail in checks),
        "",
    ]
    return "\n".join(lines)


def keep_evidence(s: Soak) -> None:
    """What a broken invariant points at, copied out of the (tmpfs) data dir before it goes:
    crash reports, files holding a traceback, the events and the pulse's log."""
    out = s.root / "evidence"
    names = set(_tracebacks(s.data))
    names |= {"events.jsonl", "events.jsonl.1", "journal.md", "sessions/pulse/output.log"}
    for name in sorted(names):
        src = s.data / name
        if src.is_file():
            dst = out / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):
                shutil.copy2(src, dst)
    print(f"soak: evidence kept in {out}", flush=True)


def main() -> int:
    minutes = float(os.environ.get("SOAK_MINUTES", "10"))
    s = setup(minutes)
    print(f"soak: {minutes:g} min in {s.root} (tmpfs: {s.tmpfs})", flush=True)
    try:
        up = s.looop("up")
        if up.returncode != 0:
            print(f"soak: looop up failed: {up.stderr.strip()}", file=sys.stderr)
            return 1
        s.t0 = time.monotonic()
        end = s.t0 + minutes * 60
        pending = list(FAULTS)
        while time.monotonic() < end:
            s.answer_asks()
            s.samples.append(s.sample())
            s.samples[-1].answered = s.answered
            if pending and time.monotonic() - s.t0 >= pending[0][0] * minutes * 60:
                _, inject = pending.pop(0)
                fault = inject(s)
                s.faults.append(fault)
                print(
                    f"soak: {fault.name}: recovered after {fault.recovered_s} s {fault.note}",
                    flush=True,
                )
            else:
                time.sleep(SAMPLE_S)
        s.samples.append(s.sample())
        s.samples[-1].answered = s.answered
        checks = check(s)
        text = report(s, minutes, checks)
    finally:
        s.looop("down", timeout=120)
        keep_evidence(s)
        if s.tmpfs:
            subprocess.run(["umount", "-l", str(s.data)], check=False)
    print(text)
    (REPO / "docs" / "SOAK.md").write_text(text)
    broken = [name for name, ok, _ in checks if not ok]
    if broken:
        print(f"soak: {len(broken)} invariant(s) broke: {'; '.join(broken)}", file=sys.stderr)
        return 1
    shutil.rmtree(s.root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
