"""The memory soak: is every long-lived looop process flat over hours?

`python bench/soak_memory.py [MINUTES]` (default 120, or SOAK_MINUTES): a throwaway home with
30 idle workers (`sleep`), the real pulse at 2 s beats deciding on every beat (a counter
sensor changes each beat; the scripted runner answers a noop), and `looop web` polled every
few seconds on the pages a dashboard reads. Once a minute it samples the RSS of the pulse, of
every worker's supervisor, of the session host(s) and of the web, and at the end fits a least
squares line over the plateau (after WARMUP_MIN of warm-up) and prints the slope per hour,
min and max for each. `LOOOP_TRACEMALLOC` is passed through, so the pulse can dump where its
memory goes (src/looop/loop/heartbeat.py MemTrace). Exits 1 when a slope passes its bound.

The classification and the fit are shared with bench/soak.py (`classify`, `slope_per_hour`).
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

LOOOP = str(Path(sys.executable).parent / "looop")
WORKERS = 30
BEAT_S = 2
SAMPLE_S = 60.0
POLL_S = 3.0
WARMUP_MIN = 10.0
BOUND_KB_H = 1024.0  # +1 MB/h per process
COUNTER = '#!/bin/sh\necho "{\\"signal\\":{\\"n\\":$(( $(date +%s) / 2 ))}}"\n'


def rss_kb(pid: int) -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _cmdline(pid: int) -> list[str]:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    return []


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def classify(data: Path, runtime: Path | None = None) -> dict[str, list[int]]:
    """This home's looop processes by role: pulse, supervisor, host, web, other.
    A process is the home's when its environment names the data dir (workers' own children
    are left out: their command is not looop's)."""
    from looop.sessions.state import list_sessions  # the bench runs in looop's venv

    out: dict[str, list[int]] = {}
    pulse = None
    with contextlib.suppress(OSError, ValueError):
        pulse = int((data / ".lock" / "pid").read_text().strip())
    sups: set[int] = set()
    with contextlib.suppress(Exception):  # a home mid-fault: its sessions may not read
        sups = {x.supervisor_pid for x in list_sessions(data) if x.supervisor_pid}
    needle = f"LOOOP_DATA_DIR={data}".encode()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        pid = int(d)
        try:
            env = Path(f"/proc/{d}/environ").read_bytes()
        except OSError:
            continue
        if needle not in env:
            continue
        # by argv, or by the title and name it shows once it set them (core/proctitle.py)
        text, comm = " ".join(_cmdline(pid)), _comm(pid)
        if pid == pulse:
            role = "pulse"
        elif pid in sups:
            role = "supervisor"
        elif "looop.sessions.host" in text or comm == "looop-host":
            role = "host"
        elif "looop web" in text or "looop.web" in text or text.startswith("looop: web "):
            role = "web"
        elif "looop" in text:
            role = "other"
        else:
            continue  # a worker's own process (sleep, bash, ...)
        out.setdefault(role, []).append(pid)
    return out


def slope_per_hour(xs: list[float], ys: list[float]) -> float:
    """Least squares slope of ys over xs (seconds), per hour."""
    if len(xs) < 3:
        return 0.0
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    if den == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den * 3600


@dataclass
class Series:
    """One process's RSS over time (t in seconds since the start)."""

    t: list[float] = field(default_factory=list)
    kb: list[int] = field(default_factory=list)

    def add(self, t: float, kb: int) -> None:
        if kb:
            self.t.append(t)
            self.kb.append(kb)

    def plateau(self, warmup_s: float) -> tuple[list[float], list[int]]:
        keep = [(t, k) for t, k in zip(self.t, self.kb, strict=True) if t >= warmup_s]
        return [t for t, _ in keep], [k for _, k in keep]


def fit(series: dict[str, Series], warmup_s: float) -> list[tuple[str, float, int, int, int]]:
    """(name, slope kB/h over the plateau, min, max, samples) for each series."""
    rows = []
    for name, s in sorted(series.items()):
        xs, ys = s.plateau(warmup_s)
        if not ys:
            continue
        rows.append((name, slope_per_hour(xs, [float(y) for y in ys]), min(ys), max(ys), len(ys)))
    return rows


class Poller(threading.Thread):
    """A dashboard left open: the pages it reads, every POLL_S."""

    PAGES = ("/api/v1/state", "/api/v1/sessions", "/api/v1/journal", "/api/v1/beats", "/")

    def __init__(self, base: str, token: str) -> None:
        super().__init__(daemon=True)
        self.base, self.token = base, token
        self.stop = threading.Event()
        self.ok = self.failed = 0

    def run(self) -> None:
        while not self.stop.is_set():
            for page in self.PAGES:
                req = urllib.request.Request(
                    self.base + page, headers={"Authorization": f"Bearer {self.token}"}
                )
                try:
                    with urllib.request.urlopen(req, timeout=20) as r:
                        r.read()
                    self.ok += 1
                except OSError:
                    self.failed += 1
            self.stop.wait(POLL_S)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def setup(root: Path, beats: int) -> tuple[Path, dict[str, str]]:
    data = root / "data"
    data.mkdir()
    script = root / "script.json"
    noop = {"decision": {"action": "noop", "reason": "memory soak"}}
    script.write_text(json.dumps([noop] * beats))
    runner = f"{sys.executable} -m looop.demo.runner --script {script}"
    cfg = {
        "default": "scripted",
        "runners": {"scripted": {"tick": runner, "worker": "sleep 1000000"}},
        "max_daily_usd": 0,
        "interval": BEAT_S,
    }
    (data / "config.json").write_text(json.dumps(cfg))
    (data / "sensors").mkdir()
    sensor = data / "sensors" / "counter.sh"
    sensor.write_text(COUNTER)
    sensor.chmod(0o755)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root),
        "LANG": "C.UTF-8",
        "LOOOP_DATA_DIR": str(data),
        "LOOOP_MAX_DECIDES_PER_HOUR": "0",
        "LOOOP_MAX_WORKERS": str(WORKERS + 5),
        "LOOOP_EVENTS_MAX_BYTES": "200000",
        "LOOOP_JOURNAL_MAX_BYTES": "20000",
        "LOOOP_RUNS_KEEP": "20",
    }
    for k in ("LOOOP_TRACEMALLOC", "LOOOP_RUNTIME_DIR"):
        if k in os.environ:
            env[k] = os.environ[k]
    return data, env


def main() -> int:
    minutes = float(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SOAK_MINUTES", "120"))
    warmup_s = min(WARMUP_MIN * 60, minutes * 60 / 4)
    root = Path(tempfile.mkdtemp(prefix="looop-memsoak-"))
    data, env = setup(root, int(minutes * 60 / BEAT_S) + 600)
    out_json = Path(os.environ.get("SOAK_MEMORY_OUT", str(root / "memory.json")))

    def looop(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [LOOOP, *args], env=env, capture_output=True, text=True, timeout=timeout
        )

    print(f"memsoak: {minutes:g} min in {root}", flush=True)
    poller = None
    web = None
    try:
        if (r := looop("up")).returncode != 0:
            print(f"memsoak: up failed: {r.stderr}", file=sys.stderr)
            return 1
        for i in range(WORKERS):
            r = looop(
                "worker",
                "start",
                f"m{i}",
                "x",
                "--no-sandbox",
                "--command",
                "sleep 1000000 # {{prompt_file}}",
            )
            if r.returncode != 0:
                print(f"memsoak: worker m{i}: {r.stderr.strip()}", file=sys.stderr)
        port = _free_port()
        web = subprocess.Popen(
            [LOOOP, "web", "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        token = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not token:
            with contextlib.suppress(OSError):
                token = (data / ".lock" / "web-token").read_text().strip()
            time.sleep(0.5)
        time.sleep(2)
        poller = Poller(f"http://127.0.0.1:{port}", token)
        poller.start()
        series: dict[str, Series] = {}
        t0 = time.monotonic()
        end = t0 + minutes * 60
        while True:
            t = time.monotonic() - t0
            roles = classify(data)
            for role, pids in roles.items():
                for pid in pids:
                    # a supervisor is named by its worker's pid order; one series per process
                    series.setdefault(f"{role}:{pid}", Series()).add(t, rss_kb(pid))
            out_json.write_text(json.dumps({k: {"t": v.t, "kb": v.kb} for k, v in series.items()}))
            if time.monotonic() >= end:
                break
            time.sleep(min(SAMPLE_S, max(0.0, end - time.monotonic())))
        rows = fit(series, warmup_s)
        print(
            f"memsoak: {minutes:g} min, {WORKERS} workers, {BEAT_S} s beats, web polled "
            f"(ok {poller.ok}, failed {poller.failed}); fit after {warmup_s / 60:g} min warm-up"
        )
        broken = 0
        for name, slope, lo, hi, n in rows:
            flag = "" if slope <= BOUND_KB_H else "  <-- over +1 MB/h"
            broken += bool(flag)
            print(f"  {name:24} {slope:+8.0f} kB/h  min {lo} max {hi} kB  ({n} samples){flag}")
        print(f"memsoak: samples in {out_json}")
        return 1 if broken else 0
    finally:
        if poller is not None:
            poller.stop.set()
        if web is not None:
            web.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                web.wait(10)
        looop("down")


if __name__ == "__main__":
    sys.exit(main())
