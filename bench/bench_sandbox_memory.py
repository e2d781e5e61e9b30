"""What the sandbox costs an idle fleet: FLEET sandboxed workers started by the CLI, the PSS of
every process each adds (its supervisor and everything under it but the agent itself —
bubblewrap, srt's seccomp helper, the waiter that holds its terminal, and srt's relays where a
box could not hand its ports to the filter) plus the processes the sandbox shares across
workers, counted once (the home's network filter, sandbox/netfilter.py, and its sandbox host,
sandbox/boxhost.py, if it still runs: it wraps boxes and exits once none was wrapped for its idle
time, which the fleet is given to pass), against the same fleet started --no-sandbox in the
same run, ROUNDS times. And how long a sandboxed worker's command waits after `looop worker
start` has returned."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from looop.home.paths import Paths

FLEET = 10
ROUNDS = 3
TARGET_MB = 60
TARGET_AFTER_MS = 250
AGENT = "sleep"  # the idle agent: what a worker runs, not what the sandbox adds


def _srt() -> str:
    repo = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(repo))
    from tests.sandbox.install import install

    return str(install())


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _added(data: Path, wid: str) -> dict[str, int]:
    """PSS (kB) by process name: the supervisor and every descendant but the agent."""
    import psutil

    meta = json.loads((data / "sessions" / wid / "meta.json").read_text())
    sup = psutil.Process(int(meta["supervisor_pid"]))
    out = {"supervisor": _pss_kb(sup.pid)}
    for child in sup.children(recursive=True):
        name = child.name()
        if name != AGENT:
            out[name] = out.get(name, 0) + _pss_kb(child.pid)
    return out


def _home_procs(data: Path) -> list[object]:
    """The home's shared sandbox processes: its sandbox host (node) and its network filter,
    each running in the data dir."""
    import psutil

    out = []
    for p in psutil.process_iter(["name", "cmdline"]):
        try:
            host = p.info["name"] == "looop-sbxhost"
            net = p.info["name"] == "looop-netfilter"  # its title has no module name
            if (host or net) and p.cwd() == str(data) and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.Error:
            continue
    return out


def _host_gone(data: Path, deadline: float) -> None:
    """Wait out the sandbox host's idle time: an idle fleet has no wrapper beside it."""
    while any(getattr(p, "name", lambda: "")() == "looop-sbxhost" for p in _home_procs(data)):
        if time.perf_counter() > deadline:
            raise RuntimeError("the sandbox host never went idle")
        time.sleep(0.5)  # polled: the host tells no one it exits


def _shared(data: Path) -> int:
    """PSS (kB) of the home's shared sandbox processes and what they started: once."""
    import psutil

    total = 0
    for p in _home_procs(data):
        assert isinstance(p, psutil.Process)
        try:
            total += _pss_kb(p.pid) + sum(_pss_kb(c.pid) for c in p.children(True))
        except psutil.Error:
            continue
    return total


def _fleet(
    looop: str, env: dict[str, str], data: Path, flag: str
) -> tuple[float, float, dict[str, int], list[float]]:
    """(MB added by FLEET idle workers in all, of which MB shared, kB by process name, per
    start: s from `worker start`'s return until the worker's command ran)."""
    after: list[float] = []
    wids = [f"{'s' if flag == '--sandbox' else 'p'}{i}" for i in range(FLEET)]
    for wid in wids:
        mark = Paths.at(data).rooms / wid / "work" / "ran" if flag == "--sandbox" else data / wid
        mark.unlink(missing_ok=True)
        cmd = f"touch {mark}; exec {AGENT} 600 # {{{{prompt_file}}}}"
        subprocess.run(
            [looop, "worker", "start", wid, "--command", cmd, flag, "go"],
            env=env,
            stdout=subprocess.DEVNULL,
            check=True,
        )
        returned = time.perf_counter()
        deadline = returned + 30
        while not mark.exists():  # polled: nothing outside the sandbox is told when it runs
            if time.perf_counter() > deadline:
                raise RuntimeError(f"worker {wid} never ran its command")
            time.sleep(0.002)
        after.append(time.perf_counter() - returned)
    time.sleep(2)  # idle: each has settled after its start
    if flag == "--sandbox":
        _host_gone(data, time.perf_counter() + 90)
    names: dict[str, int] = {}
    for wid in wids:
        for name, kb in _added(data, wid).items():
            names[name] = names.get(name, 0) + kb
    shared = _shared(data)
    total = sum(names.values()) + shared
    subprocess.run([looop, "down"], env=env, capture_output=True)  # the workers, the host
    return total / 1024, shared / 1024, names, after


def _end_hosts(runtime: Path) -> None:
    """The session hosts this run started (on its own runtime dir), by their pid."""
    import psutil

    for p in psutil.process_iter(["name", "cmdline", "environ"]):
        hosts = p.info["name"] in ("looop-host", "looop-beat")  # their titles name no runtime
        if str(runtime) in " ".join(p.info["cmdline"] or []) or (
            hosts and (p.info["environ"] or {}).get("LOOOP_RUNTIME_DIR") == str(runtime)
        ):
            p.terminate()


def run() -> list[dict[str, object]]:
    srt = _srt()
    looop_bin = str(Path(sys.executable).parent / "looop")
    with tempfile.TemporaryDirectory() as d:
        data = Path(d) / "data"
        runtime = Path(d) / "rt"
        runtime.mkdir(mode=0o700)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": d,
            "LANG": "C.UTF-8",
            "LOOOP_DATA_DIR": str(data),
            "LOOOP_RUNTIME_DIR": str(runtime),
            "LOOOP_SRT": srt,
            "LOOOP_MAX_WORKERS": "0",
        }
        subprocess.run([looop_bin, "init"], env=env, capture_output=True, check=True)
        plain: list[float] = []
        boxed: list[float] = []
        shared: list[float] = []
        after: list[float] = []
        names: list[dict[str, int]] = []
        try:
            for _ in range(ROUNDS):
                plain.append(_fleet(looop_bin, env, data, "--no-sandbox")[0])
                mb, host_mb, by_name, waits = _fleet(looop_bin, env, data, "--sandbox")
                boxed.append(mb)
                shared.append(host_mb)
                names.append(by_name)
                after.extend(waits)
        finally:
            _end_hosts(runtime)
    mid = statistics.median(boxed)
    base = statistics.median(plain)
    middle = names[boxed.index(sorted(boxed)[len(boxed) // 2])]
    parts = ", ".join(
        f"{n} {kb / 1024 / FLEET:.2f}" for n, kb in sorted(middle.items(), key=lambda x: -x[1])
    )
    return [
        {
            "name": f"memory of {FLEET} idle sandboxed workers (PSS in all)",
            "value": round(mid, 1),
            "min": round(min(boxed), 1),
            "max": round(max(boxed), 1),
            "unit": "MB",
            "baseline": round(base, 1),
            "ratio": round(mid / base, 1) if base else None,
            "target": f"<= {TARGET_MB} MB",
            "ok": mid <= TARGET_MB,
            "note": (
                f"sandbox memory: {ROUNDS} rounds, each the same {FLEET} workers --no-sandbox "
                f"then --sandbox, same run; counted: every process a sandboxed worker adds but "
                f"its agent, and what the home shares across boxes (its network filter; its "
                f"sandbox host had exited idle) once: {statistics.median(shared):.1f} MB "
                f"(min/max {min(shared):.1f}/{max(shared):.1f}); per worker, MB by process "
                f"(median round): {parts}; baseline = the unsandboxed fleet (its supervisors)"
            ),
        },
        {
            "name": "sandboxed worker: its command runs after `worker start` returns",
            "value": round(statistics.median(after) * 1000, 1),
            "min": round(min(after) * 1000, 1),
            "max": round(max(after) * 1000, 1),
            "unit": "ms",
            "target": f"<= {TARGET_AFTER_MS} ms",
            "ok": max(after) * 1000 <= TARGET_AFTER_MS,
            "note": (
                f"sandbox after-start: {ROUNDS * FLEET} starts, from the CLI's return until the "
                "worker's command has touched a file (the verb returns once the waiter "
                "inside says the worker runs its program)"
            ),
        },
    ]
