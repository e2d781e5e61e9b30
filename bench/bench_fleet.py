"""Worker sessions: start+stop cost and memory per idle worker —
and whether a supervisor's memory grows with the fleet (1, 30, 100 workers; 300 with
LOOOP_BENCH_FLEET_MOST=300).

Every figure is a whole operation as a user (or the pulse) runs it: the session API call for
start+stop (what the pulse does), the installed `looop` command starting the workers (bench_cli
times it), and the kernel's PSS of every process a worker adds (its supervisor, any wrapper
between it and the agent) for memory — with the session host's own PSS counted in the fleet
total. A worker that never printed holds no screen; one that drew a screen (and was shot) holds
its emulated screen too, and its row says what that costs (informational: no target).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROUNDS = 15
FLEET = 10
# the fleet sizes a supervisor's PSS is read at; the largest: LOOOP_BENCH_FLEET_MOST (300)
SIZES = (1, 30, 100, 300)
SUP_TARGET_MB = 3.5
# A worker that drew a screen: a clear, 30 lines, then idles (exec: no shell stays behind).
DRAWER = "sh -c 'printf \"\\033[2J\\033[H\"; seq 1 30; exec sleep 600' # {{prompt_file}}"


def _spread(xs: list[float], scale: float, digits: int = 1) -> dict[str, float]:
    return {
        "value": round(statistics.median(xs) * scale, digits),
        "min": round(min(xs) * scale, digits),
        "max": round(max(xs) * scale, digits),
    }


def _start_idle(looop_bin: str, cenv: dict[str, str], wid: str) -> None:
    """An idle worker started as a user would: `looop worker start` running a sleep."""
    cmd = [looop_bin, "worker", "start", wid, "--command", "sleep 600 # {{prompt_file}}", "go"]
    subprocess.run(cmd, env=cenv, check=True, stdout=subprocess.DEVNULL, timeout=60)


def _pss_kb(pid: int, fields: tuple[str, ...] = ("Pss:",)) -> int:
    """A process's PSS in kB (or the sum of other smaps_rollup `fields`)."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        return sum(int(line.split()[1]) for line in f if line.startswith(fields))


def _worker_kb(root: Path, sid: str) -> int:
    """PSS of what a worker adds besides its agent: the supervisor and any wrapper process
    (a shell between the supervisor and the agent)."""
    import psutil

    sup = psutil.Process(_supervisor_pid(root, sid))
    total = _pss_kb(sup.pid)
    for child in sup.children():
        if child.name() in ("bash", "sh", "dash"):  # a wrapper, not the agent
            total += _pss_kb(child.pid)
    return total


def _host_kb(home: Path) -> int:
    from looop.home.peers import holder
    from looop.sessions.hostnames import home_key, host_socket

    pid = holder(host_socket(home_key(str(home)), "/tmp"))
    return _pss_kb(pid) if pid else 0


def _start_stop(root: Path, env: dict[str, str], rounds: int, prefix: str) -> list[float]:
    from looop.sessions.client import kill
    from looop.sessions.spawner import spawn
    from looop.sessions.state import get_session

    times = []
    for i in range(rounds):
        sid = f"{prefix}{i}"
        t0 = time.perf_counter()
        spawn(root, sid, ["sleep", "600"], cwd=root, env=env)
        kill(root, sid)
        times.append(time.perf_counter() - t0)
        if get_session(root, sid).alive:
            raise RuntimeError(f"session {sid} outlived its kill")
    return times


def run() -> list[dict[str, object]]:
    import looop
    from looop.sessions.spawner import stop_host

    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(Path(looop.__file__).parent)], check=True
    )
    looop_bin = str(Path(sys.executable).parent / "looop")
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as d:
        root = Path(d) / "data"
        root.mkdir()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": d, "LANG": "C.UTF-8"}
        # (a) start+stop through the API, the host cold (first) and then warm
        stop_host("/tmp", str(root))
        cold = _start_stop(root, env, 1, "c")[0]  # the home's host is started by this one
        warm = _start_stop(root, env, ROUNDS, "e")
        rows.append(
            {
                "name": "start+stop of an empty worker session (spawn + kill, host warm)",
                **_spread(warm, 1000),
                "unit": "ms",
                "baseline": None,
                "ratio": None,
                "target": "<= 50 ms",
                "ok": statistics.median(warm) <= 0.050,
                "note": (
                    f"start+stop: {ROUNDS} rounds of spawn(`sleep 600`) + kill until the "
                    f"supervisor is gone; the first ever start also starts the session host: "
                    f"{cold * 1000:.0f} ms"
                ),
            }
        )
        # (b) the fleet's home, its workers started as a user starts them (bench_cli times that)
        data = Path(d) / "fleet"
        most = int(os.environ.get("LOOOP_BENCH_FLEET_MOST", "100"))
        sizes = [n for n in SIZES if n <= most]
        cenv = dict(env, LOOOP_DATA_DIR=str(data), LOOOP_MAX_WORKERS=str(max(sizes) + 2))
        subprocess.run([looop_bin, "init", "--no-sandbox"], env=cenv, capture_output=True)
        # memory: FLEET idle workers started by the CLI, PSS per worker and in total
        for i in range(FLEET):
            _start_idle(looop_bin, cenv, f"idle{i}")
        time.sleep(1.0)  # let every supervisor settle into its idle loop before measuring
        per = [_worker_kb(data, f"idle{i}") for i in range(FLEET)]
        host_kb = _host_kb(data)
        idle = subprocess.Popen(["sleep", "600"])
        try:
            time.sleep(0.2)
            idle_kb = _pss_kb(idle.pid)
        finally:
            idle.kill()
            idle.wait()
        for i in range(FLEET):
            subprocess.run([looop_bin, "kill", f"idle{i}"], env=cenv, capture_output=True)
        drew = _drawn_kb(looop_bin, data, cenv)
        grown = _grown(looop_bin, data, cenv, sizes)
        med = statistics.median(per) / 1024
        rows.append(
            {
                "name": f"memory per idle worker (PSS, {FLEET} idle, wrapper included)",
                "value": round(med, 2),
                "min": round(min(per) / 1024, 2),
                "max": round(max(per) / 1024, 2),
                "unit": "MB",
                "baseline": round(idle_kb / 1024, 2),
                "ratio": round(med / (idle_kb / 1024), 1),
                "target": "<= 3 MB",
                "ok": max(per) / 1024 <= 3.0,
                "note": (
                    "memory: baseline = PSS of an idle `sleep`; a worker's figure is its "
                    "supervisor (one thread on its own epoll loop, forked from the session "
                    "host, holding no screen until it prints) plus any wrapper shell; PSS "
                    "splits the host's shared pages among the host and every supervisor"
                ),
            }
        )
        total = (sum(per) + host_kb) / 1024
        rows.append(
            {
                "name": f"memory of {FLEET} idle workers (PSS, session host included)",
                "value": round(total, 1),
                "unit": "MB",
                "baseline": round(FLEET * idle_kb / 1024, 1),
                "ratio": round(total / (FLEET * idle_kb / 1024), 1),
                "target": "<= 40 MB",
                "ok": total <= 40.0,
                "note": f"fleet memory: the session host itself {host_kb / 1024:.1f} MB PSS",
            }
        )
        dmed = statistics.median(drew) / 1024
        rows.append(
            {
                "name": f"memory per idle worker that drew a screen (PSS, {FLEET} idle, shot)",
                "value": round(dmed, 2),
                "min": round(min(drew) / 1024, 2),
                "max": round(max(drew) / 1024, 2),
                "unit": "MB",
                "baseline": round(idle_kb / 1024, 2),
                "ratio": round(dmed / (idle_kb / 1024), 1),
                "target": "none (informational)",
                "ok": True,
                "note": (
                    "a screen costs memory: the same fleet, each worker having printed a clear "
                    "and 30 lines and been shot once, so its supervisor holds an emulated screen "
                    "(informational, no target)"
                ),
            }
        )
        private = ", ".join(
            f"{n}: {statistics.median(o for _, o in sups) / 1024:.2f}" for n, sups in grown.items()
        )
        for n, sups in grown.items():
            pss = [p / 1024 for p, _ in sups]
            bar = n >= 100  # fewer share the host's pages, each takes more of them
            rows.append(
                {
                    "name": f"supervisor memory at {n} idle workers (PSS, its own)",
                    **_spread(pss, 1, 2),
                    "unit": "MB",
                    "baseline": round(idle_kb / 1024, 2),
                    "ratio": round(statistics.median(pss) / (idle_kb / 1024), 1),
                    "target": f"<= {SUP_TARGET_MB} MB" if bar else "none (informational)",
                    "ok": max(pss) <= SUP_TARGET_MB or not bar,
                    "note": (
                        "a worker's cost does not grow with the fleet: one home's fleet grown "
                        f"to {', '.join(map(str, sizes))} idle workers (`looop worker start`, "
                        "each a `sleep`), every supervisor's PSS read at each size (no "
                        "wrapper); PSS splits the host's pages among all, so it falls as the "
                        "fleet grows; a supervisor's private memory (median MB by fleet size; "
                        "the lone first one read 1 s after its start, before its run settles "
                        f"~15 s in) stays flat: {private} (LOOOP_BENCH_FLEET_MOST=300 adds the "
                        "300 row)"
                    ),
                }
            )
    return rows


def _grown(
    looop_bin: str, data: Path, cenv: dict[str, str], sizes: list[int]
) -> dict[int, list[tuple[int, int]]]:
    """The PSS and the private memory (kB) of every supervisor of a fleet of idle workers,
    read as the fleet grows to each of `sizes`; the fleet is killed afterwards."""
    import psutil

    per: dict[int, list[tuple[int, int]]] = {}
    started = 0
    try:
        for n in sizes:
            for i in range(started, n):
                _start_idle(looop_bin, cenv, f"f{i}")
                started += 1
            time.sleep(1.0)  # the last started settle into their idle loops
            pids = [_supervisor_pid(data, f"f{i}") for i in range(n)]
            own = ("Private_Clean:", "Private_Dirty:")
            per[n] = [(_pss_kb(p), _pss_kb(p, own)) for p in pids if psutil.pid_exists(p)]
    finally:
        for i in range(started):
            subprocess.run([looop_bin, "kill", f"f{i}"], env=cenv, capture_output=True)
    return per


def _supervisor_pid(root: Path, sid: str) -> int:
    return int(json.loads((root / "sessions" / sid / "meta.json").read_text())["supervisor_pid"])


def _drawn_kb(looop_bin: str, data: Path, cenv: dict[str, str]) -> list[int]:
    """PSS per worker of FLEET workers that each drew a screen and were shot once."""
    from looop.sessions.client import screenshot

    for i in range(FLEET):
        subprocess.run(
            [looop_bin, "worker", "start", f"drew{i}", "--command", DRAWER, "go"],
            env=cenv,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    time.sleep(1.0)  # every one has printed and settled into its idle loop
    for i in range(FLEET):
        shot = screenshot(data, f"drew{i}")
        if "30" not in str(shot.get("text", "")):
            raise RuntimeError(f"worker drew{i} did not draw its screen: {shot}")
    time.sleep(0.5)
    try:
        return [_worker_kb(data, f"drew{i}") for i in range(FLEET)]
    finally:
        for i in range(FLEET):
            subprocess.run([looop_bin, "kill", f"drew{i}"], env=cenv, capture_output=True)
