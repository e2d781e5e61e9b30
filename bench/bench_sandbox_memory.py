"""What the sandbox costs an idle fleet: FLEET sandboxed workers started by the CLI, the PSS of
every process each adds (its supervisor and everything under it but the agent itself — srt,
its proxies and bridges, bubblewrap, the shells between) plus any process the sandbox shares
across workers, against the same fleet started --no-sandbox in the same run. And how long a
sandboxed worker's command waits after `looop worker start` has returned."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLEET = 10
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


def _added_kb(data: Path, wid: str) -> int:
    """The supervisor and every descendant but the agent."""
    import psutil

    meta = json.loads((data / "sessions" / wid / "meta.json").read_text())
    sup = psutil.Process(int(meta["supervisor_pid"]))
    total = _pss_kb(sup.pid)
    for child in sup.children(recursive=True):
        if child.name() != AGENT:
            total += _pss_kb(child.pid)
    return total


def _fleet(looop: str, env: dict[str, str], data: Path, flag: str) -> tuple[float, list[float]]:
    """(MB added by FLEET idle workers, per start: ms from `worker start`'s return until the
    worker's command ran)."""
    after: list[float] = []
    wids = [f"{'s' if flag == '--sandbox' else 'p'}{i}" for i in range(FLEET)]
    for wid in wids:
        mark = data / "sandbox" / wid / "work" / "ran" if flag == "--sandbox" else data / wid
        cmd = f"touch {mark}; exec {AGENT} 600"
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
    kb = sum(_added_kb(data, wid) for wid in wids)
    for wid in wids:
        subprocess.run([looop, "kill", wid], env=env, capture_output=True)
    return kb / 1024, after


def _end_hosts(runtime: Path) -> None:
    """The session and beat hosts this run started (on its own runtime dir), by their pid."""
    import psutil

    for p in psutil.process_iter(["cmdline"]):
        if str(runtime) in " ".join(p.info["cmdline"] or []):
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
        try:
            plain_mb, _ = _fleet(looop_bin, env, data, "--no-sandbox")
            boxed_mb, after = _fleet(looop_bin, env, data, "--sandbox")
        finally:
            _end_hosts(runtime)
    return [
        {
            "name": f"memory of {FLEET} idle sandboxed workers (PSS in all)",
            "value": round(boxed_mb, 1),
            "unit": "MB",
            "baseline": round(plain_mb, 1),
            "ratio": round(boxed_mb / plain_mb, 1) if plain_mb else None,
            "target": f"<= {TARGET_MB} MB",
            "ok": boxed_mb <= TARGET_MB,
            "note": (
                f"sandbox memory: every process a sandboxed worker adds but its agent (srt, "
                f"its proxies and bridges, bubblewrap, shells, the supervisor); baseline = "
                f"the same {FLEET} workers --no-sandbox, same run"
            ),
        },
        {
            "name": "sandboxed worker: its command runs after `worker start` returns",
            "value": round(statistics.median(after) * 1000, 1),
            "min": round(min(after) * 1000, 1),
            "max": round(max(after) * 1000, 1),
            "unit": "ms",
            "target": f"<= {TARGET_AFTER_MS} ms",
            "ok": statistics.median(after) * 1000 <= TARGET_AFTER_MS,
            "note": (
                f"sandbox after-start: {FLEET} starts, from the CLI's return until the "
                "worker's command has touched a file"
            ),
        },
    ]
