"""Idle like supervisord (issue 56 item 2): an idle home's own processes, side by side in the
same run with supervisord managing the same 30 programs plus bash running the same sensors.

The idle home: 20 sensors at the default 60 s interval and 30 idle workers (`sleep`). Its
beats run the 20 sensors every minute by design, so the baseline does the same work:
supervisord with the same 30 programs plus a bash loop running the same 20 sensor scripts
each minute (all at once, each one's output captured in its own files, as the pulse does).
Both sides run at once over the same span, so both see the same machine load.

Two measures, taken in the same span:
- CPU-s (user + system, with the children each waited for: the sensors) of each side's own
  processes, read from /proc/PID/stat at the start and end of each window and of the whole
  span, scaled to an hour; not the workers' own programs (`sleep` on both sides, ~0).
- Wakeups between beats: voluntary context switches (/proc/PID/status) of the home's own
  processes from just after each beat's `pulse_sleep` record to just before the beat it
  names, one window per sleep; supervisord's own in the same windows is the baseline.

LOOOP_BENCH_IDLE_SECS sets the span (default 600 for `make bench`; 3600 is the whole hour),
LOOOP_BENCH_IDLE_WINDOW_SECS the CPU windows in it (default 300: a 10 ms tick is 0.12 CPU-s/h
of a window). Each window's figures are printed as it ends.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

SENSORS = 20
WORKERS = 30
INTERVAL_S = 60  # the pulse's default
SPAN_S = float(os.environ.get("LOOOP_BENCH_IDLE_SECS", "600"))
WINDOW_S = float(os.environ.get("LOOOP_BENCH_IDLE_WINDOW_SECS", "300"))
WINDOWS = max(1, round(SPAN_S / WINDOW_S))
# the workers' starts decided on and their supervisors past their first minutes (each spends
# ~50 ms of CPU in all after its start, some of it minutes later: not idle cost)
SETTLE_S = float(os.environ.get("LOOOP_BENCH_IDLE_SETTLE_SECS", str(3 * INTERVAL_S + 5)))
# a wake window starts this long after the sleep's record (the beat's last writes done) and
# ends this long before the beat it names
WAKE_MARGIN_S = 2.0
POLL_S = 0.5
TICK = os.sysconf("SC_CLK_TCK")
SENSOR = '#!/bin/sh\nprintf \'{"disk": "%s", "n": %d}\' ok {n}\n'
# the baseline's sensors: every one at once, as the pulse does, then the interval
BASH_LOOP = (
    "cd {d} && while :; do for s in sensors/*.sh; do "
    '"$s" >"out/${{s##*/}}.out" 2>"out/${{s##*/}}.err" & done; wait; sleep {i}; done'
)

Snap = dict[int, tuple[str, float]]


class Wake(NamedTuple):
    """One window between beats: its length, switches by role, supervisord's, a beat inside."""

    secs: float
    by: dict[str, int]
    svd: int
    beat: bool

    @property
    def ours(self) -> int:
        return sum(self.by.values())


def _env(data: Path, home: Path) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8"}
    env.update({"LOOOP_DATA_DIR": str(data), "LOOOP_MAX_WORKERS": str(WORKERS + 2)})
    return env


def _sensors(into: Path) -> None:
    into.mkdir(parents=True, exist_ok=True)
    for n in range(SENSORS):
        path = into / f"s{n:02d}.sh"
        path.write_text(SENSOR.replace("{n}", str(n)))
        path.chmod(0o755)


def _looop_home(d: Path) -> Path:
    data = d / "data"
    _sensors(data / "sensors")
    runner = d / "runner.sh"  # the decider: says noop (a settled home's beats skip it)
    runner.write_text(
        '#!/bin/sh\nprintf \'%s\' \'{"action": "noop", "journal": "idle"}\' > .decision.json\n'
    )
    runner.chmod(0o755)
    cfg = {"default": "s", "runners": {"s": {"tick": str(runner), "worker": "cat"}}}
    (data / "config.json").write_text(json.dumps({**cfg, "sandbox": "off", "max_daily_usd": 0}))
    return data


def _supervisord_conf(d: Path) -> Path:
    lines = [
        "[supervisord]",
        f"logfile={d}/supervisord.log",
        f"pidfile={d}/supervisord.pid",
        f"childlogdir={d}",
        "nodaemon=true",
        "[unix_http_server]",
        f"file={d}/supervisor.sock",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
    ]
    for i in range(WORKERS):
        lines += [f"[program:w{i}]", "command=sleep 86400", "autorestart=true"]
        lines += [f"stdout_logfile={d}/w{i}.log", "redirect_stderr=true"]
    conf = d / "supervisord.conf"
    conf.write_text("\n".join(lines) + "\n")
    return conf


def _stat(pid: int) -> tuple[str, float] | None:
    """(comm, CPU-s of the process and the children it waited for)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = text[text.index("(") + 1 : text.rindex(")")]
    f = text[text.rindex(")") + 2 :].split()
    return comm, sum(int(x) for x in f[11:15]) / TICK


def _switches(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("voluntary_ctxt_switches"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _tree(roots: set[int]) -> set[int]:
    """`roots` and every process below them."""
    kids: dict[int, list[int]] = {}
    for e in os.listdir("/proc"):
        if e.isdigit():
            try:
                text = Path(f"/proc/{e}/stat").read_text()
            except OSError:
                continue
            kids.setdefault(int(text[text.rindex(")") + 2 :].split()[1]), []).append(int(e))
    out, todo = set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid not in out:
            out.add(pid)
            todo.extend(kids.get(pid, []))
    return out


def _home_pids(data: Path) -> set[int]:
    """The home's own processes: every one whose command line or environment names its data
    dir, and what they started."""
    found = set()
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            argv = Path(f"/proc/{e}/cmdline").read_bytes()
            env = Path(f"/proc/{e}/environ").read_bytes()
        except OSError:
            continue
        if str(data).encode() in argv or f"LOOOP_DATA_DIR={data}\0".encode() in env:
            found.add(int(e))
    return _tree(found)


def _role(pid: int, comm: str) -> str:
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except OSError:
        return comm
    words = title.removeprefix("looop: ").split()
    if words[:1] == ["supervisor"]:
        return "supervisor pulse" if words[1:2] == ["pulse"] else "worker supervisors"
    # a role, not the home's path (`pulse /tmp/…`)
    words = [w for w in words[:2] if not w.startswith("/")]
    return " ".join(words) if title.startswith("looop: ") else comm


def _snap(pids: set[int]) -> Snap:
    out = {}
    for pid in pids:
        got = _stat(pid)
        if got is not None and got[0] != "sleep":  # a worker's own program
            out[pid] = (_role(pid, got[0]), got[1])
    return out


def _spent(before: Snap, after: Snap) -> dict[str, float]:
    """CPU-s by role between two snapshots (a process born between them counted whole)."""
    by: dict[str, float] = {}
    for pid, (role, cpu) in after.items():
        by[role] = by.get(role, 0.0) + cpu - before.get(pid, (role, 0.0))[1]
    return by


def _wakes(roles: dict[int, str]) -> dict[int, int]:
    return {pid: n for pid in roles if (n := _switches(pid)) is not None}


class Sides:
    """Both sides' processes, found anew at each CPU window (a restarted one counts)."""

    def __init__(self, data: Path, base_roots: set[int]) -> None:
        self.data, self.base_roots = data, base_roots
        self.refresh()

    def refresh(self) -> None:
        self.ours, self.theirs = _home_pids(self.data), _tree(self.base_roots)
        own = _snap(self.ours)  # the home's processes but the workers' `sleep`
        self.wake_roles = {pid: role for pid, (role, _) in own.items()}
        self.svd_pids = {p for p, (r, _) in _snap(self.theirs).items() if r == "supervisord"}

    def cpu(self) -> tuple[Snap, Snap]:
        return _snap(self.ours), _snap(self.theirs)


class Sleeps:
    """The pulse's `pulse_sleep` records as they are appended (each names its next beat)."""

    def __init__(self, events: Path) -> None:
        self.events = events
        self.offset = events.stat().st_size if events.exists() else 0

    def new(self) -> list[float]:
        try:
            with open(self.events, "rb") as f:
                if os.fstat(f.fileno()).st_size < self.offset:  # rotated
                    self.offset = 0
                f.seek(self.offset)
                chunk = f.read()
        except OSError:
            return []
        whole = chunk[: chunk.rfind(b"\n") + 1]
        self.offset += len(whole)
        out = []
        for line in whole.splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("event") == "pulse_sleep" and "until_mono" in rec:
                out.append(float(rec["until_mono"]))
        return out


class WakeWindow:
    """Switches of the home's processes and of supervisord between two beats."""

    def __init__(self, sides: Sides, start: float, end: float) -> None:
        self.start, self.end, self.sides = start, end, sides
        self.began = False

    def begin(self) -> None:
        self.began, self.t0 = True, time.monotonic()
        self.roles = dict(self.sides.wake_roles)
        self.ours0, self.svd0 = _wakes(self.roles), _wakes(dict.fromkeys(self.sides.svd_pids, ""))
        self.pulse0 = self._pulse_cpu()

    def _pulse_cpu(self) -> float:
        return sum(
            got[1]
            for pid, role in self.roles.items()
            if role.startswith("pulse") and (got := _stat(pid)) is not None
        )

    def finish(self) -> Wake:
        secs = time.monotonic() - self.t0
        ours1, svd1 = _wakes(self.roles), _wakes(dict.fromkeys(self.svd0, ""))
        by: dict[str, int] = {}
        for pid, n in ours1.items():
            role = self.roles[pid]
            by[role] = by.get(role, 0) + n - self.ours0.get(pid, n)
        svd = sum(n - self.svd0.get(pid, n) for pid, n in svd1.items())
        beat = self._pulse_cpu() - self.pulse0 > 2.5 / TICK  # woken early: a beat ran inside
        return Wake(secs, by, svd, beat)


class Run:
    """One span: the CPU windows, the whole span, and a wake window inside each sleep."""

    def __init__(self, sides: Sides, sleeps: Sleeps) -> None:
        self.sides, self.sleeps = sides, sleeps
        self.ours: list[dict[str, float]] = []
        self.theirs: list[dict[str, float]] = []
        self.wakes: list[Wake] = []
        self.loads: list[float] = [os.getloadavg()[0]]
        self.wake: WakeWindow | None = None

    def go(self) -> tuple[dict[str, float], dict[str, float]]:
        """Measure WINDOWS windows of WINDOW_S; the whole span's CPU-s by role, each side."""
        first = prev = self.sides.cpu()
        cut = time.monotonic() + WINDOW_S
        while len(self.ours) < WINDOWS:
            now = time.monotonic()
            self._tend_wake(now)
            if now >= cut:
                self.sides.refresh()
                snap = self.sides.cpu()
                self.ours.append(_spent(prev[0], snap[0]))
                self.theirs.append(_spent(prev[1], snap[1]))
                self.loads.append(os.getloadavg()[0])
                prev, cut = snap, cut + WINDOW_S
                self._say_window()
            time.sleep(POLL_S)
        return _spent(first[0], prev[0]), _spent(first[1], prev[1])

    def _tend_wake(self, now: float) -> None:
        ends = self.sleeps.new()
        if ends:  # a beat ended: a window still open had a beat in it
            if self.wake is not None and self.wake.began:
                self.wakes.append(self.wake.finish()._replace(beat=True))
            start, end = now + WAKE_MARGIN_S, ends[-1] - WAKE_MARGIN_S
            self.wake = WakeWindow(self.sides, start, end) if end - start >= 10 else None
        w = self.wake
        if w is not None and not w.began and now >= w.start:
            w.begin()
        elif w is not None and w.began and now >= w.end:
            self.wakes.append(w.finish())
            self.wake = None

    def _say_window(self) -> None:
        per_h = 3600 / WINDOW_S
        a, b = sum(self.ours[-1].values()) * per_h, sum(self.theirs[-1].values()) * per_h
        rate = [w.ours / w.secs for w in self.wakes if not w.beat]
        print(
            f"  window {len(self.ours)}/{WINDOWS}: looop {a:.2f} CPU-s/h, supervisord + bash "
            f"{b:.2f}; wake windows {len(rate)}, last {rate[-1] if rate else 0:.3f}/s; "
            f"load {self.loads[-1]:.1f}; {time.strftime('%H:%M:%S', time.gmtime())} UTC",
            file=sys.stderr,
            flush=True,
        )


def _looop(bin_: str, env: dict[str, str], *args: str, timeout: float = 120) -> None:
    subprocess.run([bin_, *args], env=env, check=True, timeout=timeout, capture_output=True)


def _measure(d: Path, bin_: str, svd: str) -> tuple[Run, tuple[dict[str, float], ...]]:
    data = _looop_home(d / "looop")
    env = _env(data, d)
    base = d / "base"
    _sensors(base / "sensors")
    (base / "out").mkdir()
    conf = _supervisord_conf(base)
    procs = []
    _looop(bin_, env, "up")
    try:
        for i in range(WORKERS):
            cmd = "sleep 86400 # {{prompt_file}}"
            _looop(bin_, env, "worker", "start", f"w{i}", "--command", cmd, "go")
        q = subprocess.DEVNULL
        procs.append(
            subprocess.Popen([svd, "-c", str(conf)], start_new_session=True, stdout=q, stderr=q)
        )
        loop = BASH_LOOP.format(d=base, i=INTERVAL_S)
        procs.append(subprocess.Popen(["bash", "-c", loop], start_new_session=True))
        # settled: the workers' starts decided on, the next beats skip the decider
        time.sleep(SETTLE_S)
        run = Run(Sides(data, {p.pid for p in procs}), Sleeps(data / "events.jsonl"))
        whole = run.go()
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(30)
        subprocess.run([bin_, "down"], env=env, timeout=120, capture_output=True)
    return run, whole


def _by_role(windows: list[dict[str, float]], per_h: float) -> str:
    roles = {k for w in windows for k in w}
    med = {k: statistics.median(w.get(k, 0.0) for w in windows) * per_h for k in roles}
    return ", ".join(f"{k} {v:.2f}" for k, v in sorted(med.items(), key=lambda kv: -kv[1]))


def _cpu_rows(run: Run, whole: tuple[dict[str, float], ...]) -> list[dict[str, object]]:
    per_h = 3600 / WINDOW_S
    a = [sum(w.values()) * per_h for w in run.ours]
    b = [sum(w.values()) * per_h for w in run.theirs]
    span = WINDOW_S * WINDOWS
    wa, wb = (sum(w.values()) * 3600 / span for w in whole)
    load = f"load average {min(run.loads):.1f}-{max(run.loads):.1f} (1 min, at each window's end)"
    windows = ", ".join(f"{x:.2f}/{y:.2f}" for x, y in zip(a, b, strict=True))
    what = "(20 sensors, 30 idle workers)"
    return [
        {
            "name": f"idle home's own CPU an hour, beats included {what}",
            "value": round(statistics.median(a), 2),
            "min": round(min(a), 2),
            "max": round(max(a), 2),
            "unit": "CPU-s/h",
            "baseline": round(statistics.median(b), 2),
            "ratio": round(statistics.median(a) / statistics.median(b), 2),
            "target": "<= supervisord + bash running the same sensors",
            "ok": statistics.median(a) <= statistics.median(b),
            "note": f"idle-cpu: {WINDOWS} windows of {WINDOW_S:.0f} s side by side "
            f"(after {SETTLE_S:.0f} s settling), each scaled to an hour; CPU-s of each side's own "
            "processes with the children they waited for, workers' `sleep` not counted; "
            f"ours by role (CPU-s/h, median window): {_by_role(run.ours, per_h)}; baseline "
            f"(min/median/max {min(b):.2f}/{statistics.median(b):.2f}/{max(b):.2f}): "
            f"{_by_role(run.theirs, per_h)}; each window ours/baseline: {windows}; {load}",
        },
        {
            "name": f"idle home's own CPU over the whole span, beats included {what}",
            "value": round(wa, 2),
            "min": None,
            "max": None,
            "unit": "CPU-s/h",
            "baseline": round(wb, 2),
            "ratio": round(wa / wb, 2),
            "target": "<= supervisord + bash running the same sensors",
            "ok": wa <= wb,
            "note": f"idle-whole: the same run's {span:.0f} s read once at its start and end, "
            f"scaled to an hour (LOOOP_BENCH_IDLE_SECS={SPAN_S:g}; 3600 is the whole hour); "
            f"ours by role: {_by_role([whole[0]], 3600 / span)}; baseline: "
            f"{_by_role([whole[1]], 3600 / span)}",
        },
    ]


def _wake_row(run: Run) -> dict[str, object]:
    good = [w for w in run.wakes if not w.beat]
    secs = sum(w.secs for w in good) or 1e-9
    ours = [w.ours / w.secs for w in good] or [float("nan")]
    svd = [w.svd / w.secs for w in good] or [float("nan")]
    pooled = sum(w.ours for w in good) / secs
    roles: dict[str, float] = {}
    for w in good:
        for k, n in w.by.items():
            roles[k] = roles.get(k, 0.0) + n / secs
    split = ", ".join(f"{k} {v:.3f}/s" for k, v in sorted(roles.items(), key=lambda kv: -kv[1]))
    med = statistics.median(ours)
    return {
        "name": "idle home's processes' wakeups between beats (20 sensors, 30 idle workers)",
        "value": round(med, 3),
        "min": round(min(ours), 3),
        "max": round(max(ours), 3),
        "unit": "/s",
        "baseline": round(statistics.median(svd), 3),
        "ratio": None,
        "target": "<= 0.2 /s",
        "ok": med <= 0.2 and pooled <= 0.2,
        "note": f"idle-wake: voluntary_ctxt_switches of the home's own processes (the workers' "
        f"`sleep` not counted) from {WAKE_MARGIN_S:g} s after each beat's sleep record to "
        f"{WAKE_MARGIN_S:g} s before the beat it names, {len(good)} windows of "
        f"{min((w.secs for w in good), default=0):.0f}-"
        f"{max((w.secs for w in good), default=0):.0f} s in the same run "
        f"({len(run.wakes) - len(good)} left out: a beat ran inside); pooled {pooled:.3f}/s, "
        f"by role {split}; baseline = supervisord's own in the same windows "
        f"(min/max {min(svd):.2f}/{max(svd):.2f}/s)",
    }


def run() -> list[dict[str, object]]:
    bin_ = str(Path(sys.executable).parent / "looop")
    svd = shutil.which("supervisord") or str(Path(sys.executable).parent / "supervisord")
    if not os.path.exists(svd):
        return [
            {
                "name": "idle home's own CPU an hour, beats included (20 sensors, 30 idle workers)",
                "value": None,
                "unit": "CPU-s/h",
                "target": "<= supervisord's",
                "ok": False,
                "note": "idle-cpu: supervisord not found: `make bench` installs it (the dev extra)",
            }
        ]
    with tempfile.TemporaryDirectory(prefix="looop-bench-idle-") as t:
        got, whole = _measure(Path(t), bin_, svd)
    return [*_cpu_rows(got, whole), _wake_row(got)]


if __name__ == "__main__":
    for row in run():
        print(json.dumps(row), flush=True)
