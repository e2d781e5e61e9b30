"""A lived-in home against a plain one, interleaved round by round in the same run: `status`
with a busy day's ledger (1k, 10k and 100k rows today) against `status` of a home with none,
and `status` and `ls` with 100 finished workers kept beside a live one against the same verb
with the live one alone: what the ledger and the kept workers add, to be flat (a human verb's
start against `python -c pass` is bench_cli's). Each is a whole command (the installed console
script, a new process each), every round beside `python -c pass`. Last, a worker's start+stop
pair (`worker start` then `kill`) against tmux's (`new-session -d` then `kill-session`, its
server warm), the pairs interleaved the same way."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROUNDS = 15
LEDGER_ROWS = (1_000, 10_000, 100_000)
DEAD = 100
TARGET = 1.5  # what a busy ledger or 100 kept workers add: flat
PAIR_TARGET = 3.0


def _time(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def _home(d: Path) -> dict[str, str]:
    from looop.home.paths import Paths
    from looop.runners.presets import default_config_obj
    from looop.seed import ensure_data_dir

    paths = Paths.at(d / "data")
    ensure_data_dir(paths)
    paths.config.write_text(json.dumps(default_config_obj(), indent=2) + "\n")
    env = dict(os.environ, LOOOP_DATA_DIR=str(paths.data), HOME=str(d))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: byte-compiled once
    return env


def _ledger(data: Path, rows: int, now: float) -> None:
    """`rows` rows today (the last hours, five workers), written as looop writes them; the
    last one by looop's own writer, which keeps the running totals."""
    from looop.home.stamps import utc_stamp
    from looop.spend.record import append_cost

    span = min(6 * 3600, now % 86400 - 60)  # all of them today, UTC and local alike here
    lines = []
    for i in range(rows - 1):
        t = now - span + span * i / rows
        row = {"cost_usd": 0.0012, "id": f"w{i % 5}", "kind": "session", "runner": "claude"}
        lines.append(json.dumps({**row, "ts": utc_stamp(t)}, separators=(",", ":")))
    (data / "cost.jsonl").write_text("".join(x + "\n" for x in lines))
    append_cost(data / "cost.jsonl", now, "session", "w0", "claude", 0.0012)


def _pairs(
    cmds: dict[str, list[str]], env_of: dict[str, dict[str, str]], rounds: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    base_cmd = [sys.executable, "-c", "pass"]
    ours: dict[str, list[float]] = {k: [] for k in cmds}
    base: dict[str, list[float]] = {k: [] for k in cmds}
    for _ in range(2):  # the page cache warm for both programs
        for k, cmd in cmds.items():
            _time(base_cmd, env_of[k])
            _time(cmd, env_of[k])
    for r in range(rounds):
        for k, cmd in cmds.items():
            pair = [(base[k], base_cmd), (ours[k], cmd)]
            for sink, c in pair if r % 2 else reversed(pair):
                sink.append(_time(c, env_of[k]))
    return ours, base


def _row(name: str, ours: list[float], base: list[float], target: float) -> dict[str, object]:
    med, bmed = statistics.median(ours), statistics.median(base)
    return {
        "name": name,
        "value": med * 1000,
        "min": min(ours) * 1000,
        "max": max(ours) * 1000,
        "unit": "ms",
        "baseline": bmed * 1000,
        "ratio": med / bmed,
        "target": f"ratio <= {target}",
        "ok": med / bmed <= target,
    }


def run() -> list[dict[str, object]]:
    import looop
    from looop.home.clock import SystemClock
    from looop.sessions.client import kill, wait
    from looop.sessions.spawner import spawn

    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(Path(looop.__file__).parent)], check=True
    )
    bin_ = str(Path(sys.executable).parent / "looop")
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as d:
        # a busy day's ledger: one home per size
        cmds: dict[str, list[str]] = {}
        envs: dict[str, dict[str, str]] = {}
        now = time.time()
        for n in LEDGER_ROWS:
            env = _home(Path(d) / f"ledger{n}")
            _ledger(Path(env["LOOOP_DATA_DIR"]), n, now)
            cmds[f"ledger{n}"], envs[f"ledger{n}"] = [bin_, "status"], env
        env = _home(Path(d) / "empty")  # no ledger, no worker
        cmds["empty-status"], envs["empty-status"] = [bin_, "status"], env
        live = _home(Path(d) / "live")  # the live worker alone
        spawn(Path(live["LOOOP_DATA_DIR"]), "live", ["cat"], cwd=Path(d), env=live)
        for verb in ("status", "ls"):
            cmds[f"live-{verb}"], envs[f"live-{verb}"] = [bin_, verb], live
        # 100 finished workers and a live one
        env = _home(Path(d) / "dead")
        data = Path(env["LOOOP_DATA_DIR"])
        for i in range(DEAD):
            spawn(data, f"d{i}", ["true"], cwd=data, env=env)
        for i in range(DEAD):
            wait(data, f"d{i}", 30, SystemClock())
        spawn(data, "live", ["cat"], cwd=data, env=env)
        for verb in ("status", "ls"):
            cmds[f"dead-{verb}"], envs[f"dead-{verb}"] = [bin_, verb], env
        try:
            ours, _base = _pairs(cmds, envs, ROUNDS)
        finally:
            for home in (data, Path(live["LOOOP_DATA_DIR"])):
                kill(home, "live")
                wait(home, "live", 30, SystemClock())
    growth = []
    for n in LEDGER_ROWS:
        k = f"ledger{n}"
        rows.append(
            _row(f"looop status, {n} ledger rows today vs none", ours[k], ours["empty-status"],
                 TARGET)
        )  # fmt: skip
        growth.append(statistics.median(ours[k]))
    per_k = (growth[-1] - growth[0]) / ((LEDGER_ROWS[-1] - LEDGER_ROWS[0]) / 1000)
    rows[0]["note"] = (
        f"busy: {ROUNDS} interleaved rounds, every home's verb in each, beside `python -c "
        "pass` (same venv python) in alternating order; ratio = median / the plain home's "
        "median. Ledger: rows today over the last hours from five workers, the last one "
        f"appended by looop (its running totals kept), against a home with none; growth "
        f"{per_k * 1000:+.3f} ms per 1k rows from {LEDGER_ROWS[0]} to {LEDGER_ROWS[-1]}. "
        f"Kept: {DEAD} finished workers (`true`) beside a live one (`cat`), against a home "
        "with the live one alone. `python -c pass` " + _ms([x for k in ours for x in _base[k]])
    )
    for verb in ("status", "ls"):
        k = f"dead-{verb}"
        name = f"looop {verb}, {DEAD} finished workers kept vs none"
        rows.append(_row(name, ours[k], ours[f"live-{verb}"], TARGET))
    rows.append(_pair_row(bin_))
    return rows


def _pair_row(bin_: str) -> dict[str, object]:
    name = "start+stop pair: looop worker start + kill vs tmux new-session + kill-session"
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.realcli.install import InstallError, install_debian

    try:  # the baseline, installed as the tests install their real parts
        install_debian({"tmux": "tmux"})
    except InstallError as e:
        why = f"tmux could not be installed: {e}"
    else:
        why = "tmux not found after its install"
    tmux = shutil.which("tmux")
    if tmux is None:
        return {
            "name": name,
            "value": None,
            "unit": "ms",
            "target": f"ratio <= {PAIR_TARGET}",
            "ok": False,
            "note": why,
        }
    with tempfile.TemporaryDirectory() as d:
        ours, base = _start_stop_pairs(bin_, tmux, Path(d), ROUNDS)
    row = _row(name, ours, base, PAIR_TARGET)
    row["note"] = (
        f"start+stop pair: {ROUNDS} interleaved rounds; ours = `looop worker start kN --no-sandbox "
        "--command 'tail -f {{prompt_file}}' hi` then `looop kill kN`, "
        "tmux's = `tmux new-session -d -s tN 'tail -f FILE'` then `tmux kill-session -t tN` on "
        "its own socket with a kept session (the server warm); each pair timed as two whole "
        "commands"
    )
    return row


def _start_stop_pairs(
    bin_: str, tmux: str, d: Path, rounds: int
) -> tuple[list[float], list[float]]:
    env = _home(d)
    brief = d / "brief.md"
    brief.write_text("hi\n")
    sock = ["-L", f"looop-bench-{os.getpid()}", "-f", "/dev/null"]
    subprocess.run([tmux, *sock, "new-session", "-d", "-s", "keep", "sleep 600"], check=True)

    def ours_pair(r: int) -> float:
        start = [bin_, "worker", "start", f"k{r}", "--no-sandbox"]
        start += ["--command", "tail -f {{prompt_file}}", "hi"]
        return _time(start, env) + _time([bin_, "kill", f"k{r}"], env)

    def tmux_pair(r: int) -> float:
        new = [tmux, *sock, "new-session", "-d", "-s", f"t{r}", f"tail -f {brief}"]
        return _time(new, env) + _time([tmux, *sock, "kill-session", "-t", f"t{r}"], env)

    ours: list[float] = []
    base: list[float] = []
    try:
        for r in range(rounds + 2):  # two to warm up
            pair = [(base, tmux_pair), (ours, ours_pair)]
            for sink, f in pair if r % 2 else reversed(pair):
                took = f(r)
                if r >= 2:
                    sink.append(took)
    finally:
        subprocess.run([tmux, *sock, "kill-server"], capture_output=True)
        subprocess.run([bin_, "down"], env=env, capture_output=True)
    return ours, base


def _ms(times: list[float]) -> str:
    """min/median/max in ms."""
    return "/".join(f"{x * 1000:.1f}" for x in (min(times), statistics.median(times), max(times)))


if __name__ == "__main__":
    for row in run():
        print(row)
