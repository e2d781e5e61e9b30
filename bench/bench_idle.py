"""Idle like supervisord (issue 56): the CPU an idle home's own processes burn over whole
hours, beats included, against supervisord managing the same 30 programs in the same run.

The idle home: 20 sensors at the default 60 s interval and 30 idle workers (`sleep`). Its
beats run the 20 sensors every minute by design, so the baseline does the same work:
supervisord with the same 30 programs plus a bash loop running the same 20 sensor scripts
each minute (all at once, each one's output captured in its own files, as the pulse does).
Both run side by side in the same span. Counted on each side: CPU-s (user + system, with the
children each waited for: the sensors) of its own processes, read from /proc/PID/stat at the
start and end of each window; not the workers' own programs (`sleep` on both sides, ~0).
LOOOP_BENCH_IDLE_SECS sets the span (default 600: two 300 s windows, each scaled to an hour,
so one window holds five beats and the scaling carries a beat's worth of rounding).
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

SENSORS = 20
WORKERS = 30
INTERVAL_S = 60  # the pulse's default
SPAN_S = float(os.environ.get("LOOOP_BENCH_IDLE_SECS", "600"))
WINDOWS = int(os.environ.get("LOOOP_BENCH_IDLE_WINDOWS", "2"))
# the workers' starts decided on and their supervisors past their first minutes (each spends
# ~50 ms of CPU in all after its start, some of it minutes later: not idle cost)
SETTLE_S = 3 * INTERVAL_S + 5
TICK = os.sysconf("SC_CLK_TCK")
SENSOR = '#!/bin/sh\nprintf \'{"disk": "%s", "n": %d}\' ok {n}\n'
# the baseline's sensors: every one at once, as the pulse does, then the interval
BASH_LOOP = (
    "cd {d} && while :; do for s in sensors/*.sh; do "
    '"$s" >"out/${{s##*/}}.out" 2>"out/${{s##*/}}.err" & done; wait; sleep {i}; done'
)


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


def _snap(pids: set[int]) -> dict[int, tuple[str, float]]:
    out = {}
    for pid in pids:
        got = _stat(pid)
        if got is not None and got[0] != "sleep":  # a worker's own program
            out[pid] = (_role(pid, got[0]), got[1])
    return out


def _spent(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]
) -> dict[str, float]:
    """CPU-s by role between two snapshots (a process born between them counted whole)."""
    by: dict[str, float] = {}
    for pid, (role, cpu) in after.items():
        by[role] = by.get(role, 0.0) + cpu - before.get(pid, (role, 0.0))[1]
    return by


def _looop(bin_: str, env: dict[str, str], *args: str, timeout: float = 120) -> None:
    subprocess.run([bin_, *args], env=env, check=True, timeout=timeout, capture_output=True)


def _measure(d: Path, bin_: str, svd: str) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
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
            _looop(
                bin_,
                env,
                "worker",
                "start",
                f"w{i}",
                "--command",
                "sleep 86400 # {{prompt_file}}",
                "go",
            )
        q = subprocess.DEVNULL
        procs.append(
            subprocess.Popen([svd, "-c", str(conf)], start_new_session=True, stdout=q, stderr=q)
        )
        loop = BASH_LOOP.format(d=base, i=INTERVAL_S)
        procs.append(subprocess.Popen(["bash", "-c", loop], start_new_session=True))
        # settled: the workers' starts decided on, the next beats skip the decider
        time.sleep(SETTLE_S)
        ours, theirs = [], []
        for _ in range(WINDOWS):
            a0, b0 = _snap(_home_pids(data)), _snap(_tree({p.pid for p in procs}))
            time.sleep(SPAN_S / WINDOWS)
            ours.append(_spent(a0, _snap(_home_pids(data))))
            theirs.append(_spent(b0, _snap(_tree({p.pid for p in procs}))))
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(30)
        subprocess.run([bin_, "down"], env=env, timeout=120, capture_output=True)
    return ours, theirs


def run() -> list[dict[str, object]]:
    bin_ = str(Path(sys.executable).parent / "looop")
    svd = shutil.which("supervisord") or str(Path(sys.executable).parent / "supervisord")
    name = "idle home's own CPU an hour, beats included (20 sensors, 30 idle workers)"
    if not os.path.exists(svd):
        return [
            {
                "name": name,
                "value": None,
                "unit": "CPU-s/h",
                "target": "<= supervisord's",
                "ok": False,
                "note": "idle-cpu: supervisord not found: pip install supervisor",
            }
        ]
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="looop-bench-idle-") as t:
        ours, theirs = _measure(Path(t), bin_, svd)
    per_h = 3600 * WINDOWS / SPAN_S
    a = [sum(w.values()) * per_h for w in ours]
    b = [sum(w.values()) * per_h for w in theirs]
    roles = {k: statistics.median(w.get(k, 0.0) for w in ours) * per_h for k in ours[0]}
    split = ", ".join(f"{k} {v:.2f}" for k, v in sorted(roles.items(), key=lambda kv: -kv[1]))
    bsplit = {k: statistics.median(w.get(k, 0.0) for w in theirs) * per_h for k in theirs[0]}
    load = os.getloadavg()[0]
    windows = ", ".join(f"{x:.2f}/{y:.2f}" for x, y in zip(a, b, strict=True))
    return [
        {
            "name": name,
            "value": round(statistics.median(a), 2),
            "min": round(min(a), 2),
            "max": round(max(a), 2),
            "unit": "CPU-s/h",
            "baseline": round(statistics.median(b), 2),
            "ratio": round(statistics.median(a) / statistics.median(b), 2),
            "target": "<= supervisord + bash running the same sensors",
            "ok": statistics.median(a) <= statistics.median(b),
            "note": f"idle-cpu: {WINDOWS} windows of {SPAN_S / WINDOWS:.0f} s side by side "
            f"(after {SETTLE_S:.0f} s settling), each scaled to an hour; CPU-s of each side's own "
            "processes with the children they waited for, workers' `sleep` not counted; "
            f"ours by role (CPU-s/h, median window): {split}; baseline: "
            + ", ".join(f"{k} {v:.2f}" for k, v in sorted(bsplit.items()))
            + f"; each window ours/baseline: {windows}; the whole span "
            f"{statistics.mean(a):.2f}/{statistics.mean(b):.2f}; load average {load0:.1f} at "
            f"the start, {load:.1f} at the end",
        }
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
