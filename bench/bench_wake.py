"""Woken by the change (issue 56): a watched file's change to the decider's runner starting,
an answer to a blocked `ask` returning, and how often an idle home's processes wake."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from looop.human.mailbox import answer

TRIALS = 20
SPACING_S = 6.0  # past the 5 s coalesce window: each change arrives after a quiet spell
# quiet beats (woken, the same text again) between changes: the flap rule's default window is
# 5 beats, and one change in it weighs at most 24% (< flap_high 30%): never damped
QUIET_BEATS = 4
IDLE_S = 45.0  # measured inside one 60 s sleep, between beats


def _env(data: Path, **extra: str) -> dict[str, str]:
    # an installed wheel is byte-compiled once by pip: no start here recompiles (bench_cli.py)
    drop = ("LOOOP_", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update({"LOOOP_DATA_DIR": str(data), "LOOOP_LOG_FORMAT": "json", **extra})
    return env


def _home(tmp: Path, with_sensor: bool) -> tuple[Path, Path]:
    """A home with a scripted runner that notes when it starts; its marks file."""
    data, marks = tmp / "data", tmp / "marks"
    (data / "sensors").mkdir(parents=True)
    script = tmp / "script.json"
    script.write_text(json.dumps([{"decision": {"action": "noop", "reason": "b"}}] * 200))
    runner = tmp / "runner.sh"
    runner.write_text(
        f"#!/bin/sh\ndate +%s.%N >> {marks}\n"
        f'exec {sys.executable} -m looop.demo.runner --script {script} "$@"\n'
    )
    runner.chmod(0o755)
    cfg = {"default": "s", "runners": {"s": {"tick": str(runner), "worker": "cat"}}}
    (data / "config.json").write_text(json.dumps({**cfg, "max_daily_usd": 0}))
    if with_sensor:
        sensor = data / "sensors" / "inbox.sh"
        sensor.write_text(
            '#!/bin/sh\n# looop:watch=inbox.txt\nprintf \'{"inbox": "%s"}\' "$(cat inbox.txt)"\n'
        )
        sensor.chmod(0o755)
    return data, marks


def _await(stream: IO[bytes], name: str, secs: float) -> dict[str, Any]:
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev.get("event") == name:
            return dict(ev)
    raise RuntimeError(f"no {name} event within {secs}s")


def _reaction() -> list[float]:
    with tempfile.TemporaryDirectory(prefix="looop-bench-") as t:
        data, marks = _home(Path(t), with_sensor=True)
        p = subprocess.Popen(
            [sys.executable, "-m", "looop", "pulse"],
            env=_env(data),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        assert p.stdout is not None
        took = []
        try:
            _await(p.stdout, "sleep", 60)
            for i in range(TRIALS):
                time.sleep(SPACING_S)
                seen = len(marks.read_text().split())
                changed = time.time()
                (data / "inbox.txt").write_text(f"mail {i}\n")
                _await(p.stdout, "sleep", 30)  # the woken beat, decided, asleep again
                stamps = marks.read_text().split()
                took.append(float(stamps[seen]) - changed if len(stamps) > seen else 60.0)
                # quiet beats between changes, each written the moment the last one sleeps:
                # flap damping is not what is measured here (QUIET_BEATS)
                for _ in range(QUIET_BEATS):
                    (data / "inbox.txt").write_text(f"mail {i}\n")
                    _await(p.stdout, "sleep", 30)
        finally:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    return took


def _answers() -> list[float]:
    """The answer's write to the blocked `looop ask` returning (its process ended, as a
    script's `$(looop ask …)` sees it), not only its line printed."""
    took = []
    with tempfile.TemporaryDirectory(prefix="looop-bench-") as t:
        data, _ = _home(Path(t), with_sensor=False)
        for i in range(TRIALS):
            p = subprocess.Popen(
                [sys.executable, "-m", "looop", "ask", "w1", "--prompt", f"q{i}?"],
                env=_env(data),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            assert p.stdout is not None and p.stderr is not None
            p.stderr.readline()  # "waiting for an answer": blocked now
            asked = sorted((data / "asks").glob("w1-*.json"))[-1].stem
            t0 = time.perf_counter()
            answer(data / "asks", data / "answers", asked, "yes", time.time())
            p.wait(10)
            took.append(time.perf_counter() - t0)
            p.stdout.close()
            p.stderr.close()
    return took


def _answer_starts() -> tuple[list[float], list[float]]:
    """`looop answer ID yes` of a pending ask (made untimed before it), and `python -c pass`,
    as whole commands, interleaved pair by pair in alternating order: (answer's, pass's)."""
    from looop.human.mailbox import new_ask

    ours: list[float] = []
    base: list[float] = []
    with tempfile.TemporaryDirectory(prefix="looop-bench-") as t:
        data, _ = _home(Path(t), with_sensor=False)
        env = _env(data)
        for r in range(-2, TRIALS):  # two rounds warm the page cache, not counted
            rec = new_ask(data / "asks", data / "answers", "w1", f"q{r}?", None, [], time.time())
            pair = [
                (base, [sys.executable, "-c", "pass"]),
                (ours, [sys.executable, "-m", "looop", "answer", rec["id"], "yes"]),
            ]
            for sink, cmd in pair if r % 2 else reversed(pair):
                t0 = time.perf_counter()
                subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=30)
                if r >= 0:
                    sink.append(time.perf_counter() - t0)
    return ours, base


def _door_answers() -> list[float]:
    """A worker's `ask` through its door (the session host holds the call on a run of the
    home's `looop ask`): the answer's write to the worker's `ask` printing it."""
    from looop.sessions.client import kill
    from looop.sessions.spawner import spawn

    took = []
    with tempfile.TemporaryDirectory(prefix="looop-bench-") as t:
        data, _ = _home(Path(t), with_sensor=False)
        fifo = Path(t) / "said"
        os.mkfifo(fifo)
        ask = f"{sys.executable} -m looop ask w1 --prompt"
        line = f'for i in $(seq {TRIALS}); do {ask} "q$i?" > {fifo}; done; sleep 60'
        env = {**_env(data), "LOOOP_SESSION_ID": "w1"}
        try:
            spawn(data, "w1", ["sh", "-c", line], cwd=data, env=env, host_idle_s=60)
            with open(fifo, "rb", buffering=0) as said:
                for i in range(1, TRIALS + 1):
                    asked = data / "asks" / f"w1-{i}.json"
                    deadline = time.monotonic() + 30
                    while not asked.exists() and time.monotonic() < deadline:
                        time.sleep(0.005)  # the worker's ask on file: blocked at the door
                    time.sleep(1.0)  # its run waiting on the answer, past its own start
                    t0 = time.perf_counter()
                    answer(data / "asks", data / "answers", asked.stem, "yes", time.time())
                    said.read(4)
                    took.append(time.perf_counter() - t0)
        finally:
            kill(data, "w1")  # its supervisor ends its session and the door's run with it
    return took


def _switches(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches"):
                return int(line.split()[1])
    return 0


def _home_pids(data: Path) -> list[int]:
    """The home's own processes: every one whose command line names its data dir, with
    the pulse and its parent (the supervisor)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes()
            env = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if str(data).encode() in argv or f"LOOOP_DATA_DIR={data}".encode() in env:
            found.add(int(entry))
    return sorted(found)


def _idle() -> tuple[float, str]:
    """Wakeups a second of an idle home's processes (`up`, no sensors, no workers)."""
    with tempfile.TemporaryDirectory(prefix="looop-bench-") as t:
        data, _ = _home(Path(t), with_sensor=False)
        env = _env(data, LOOOP_LOG_FORMAT="human")
        subprocess.run([sys.executable, "-m", "looop", "up"], env=env, check=True, timeout=60)
        try:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "looop",
                    "expect",
                    "pulse",
                    "next beat in",
                    "--timeout",
                    "60s",
                ],
                env=env,
                check=True,
                timeout=90,
                capture_output=True,
            )
            pids = _home_pids(data)
            before = {pid: _switches(pid) for pid in pids}
            time.sleep(IDLE_S)
            each = {_role(pid): _switches(pid) - n for pid, n in before.items()}
            total = sum(each.values())
        finally:
            subprocess.run(
                [sys.executable, "-m", "looop", "down"], env=env, timeout=90, capture_output=True
            )
    return total / IDLE_S, ", ".join(f"{k} {v / IDLE_S:.2f}/s" for k, v in sorted(each.items()))


def _role(pid: int) -> str:
    """The process's role, as its title says (`looop: session host …`)."""
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except OSError:
        return str(pid)
    return " ".join(title.removeprefix("looop: ").split()[:2])


def run() -> list[dict[str, object]]:
    react = _reaction()
    asks = _answers()
    door = _door_answers()
    starts, passes = _answer_starts()
    rate, split = _idle()
    med_r, med_a = statistics.median(react), statistics.median(asks)
    med_d = statistics.median(door)
    med_s, med_p = statistics.median(starts), statistics.median(passes)
    return [
        {
            "name": "watched file change to the decider's runner starting (60 s interval)",
            "value": round(med_r, 3),
            "min": round(min(react), 3),
            "max": round(max(react), 3),
            "unit": "s",
            "baseline": 30.0,
            "ratio": None,
            "target": "median <= 1 s, max <= 2 s",
            "ok": med_r <= 1.0 and max(react) <= 2.0,
            "note": "wake-reaction: baseline = half the 60 s interval, the mean wait of a pulse "
            f"that polls; {TRIALS} changes {SPACING_S:g} s apart, {QUIET_BEATS} woken quiet beats "
            "between them so flap damping is not what is measured",
        },
        {
            "name": "answer to a blocked `ask` returning",
            "value": round(med_a * 1000, 1),
            "min": round(min(asks) * 1000, 1),
            "max": round(max(asks) * 1000, 1),
            "unit": "ms",
            "baseline": 500.0,
            "ratio": None,
            "target": "median <= 50 ms",
            "ok": med_a <= 0.05,
            "note": "wake: baseline = half the 1 s `ask_poll_ms` poll it replaces; timed to the "
            "`ask` process's end (issue 68: its teardown was most of a door's wait)",
        },
        {
            "name": "answer to a worker's `ask` returning through its door",
            "value": round(med_d * 1000, 1),
            "min": round(min(door) * 1000, 1),
            "max": round(max(door) * 1000, 1),
            "unit": "ms",
            "baseline": 316.0,
            "ratio": None,
            "target": "median <= 50 ms",
            "ok": med_d <= 0.05,
            "note": "wake-door: the session host holds the call on its run of `looop ask`; "
            "baseline = the old main's median (a 0.25 s tick of held calls)",
        },
        {
            "name": "looop answer whole (a pending ask)",
            "value": round(med_s * 1000, 1),
            "min": round(min(starts) * 1000, 1),
            "max": round(max(starts) * 1000, 1),
            "unit": "ms",
            "baseline": round(med_p * 1000, 1),
            "ratio": round(med_s / med_p, 2),
            "target": "<= 5x python -c pass",
            "ok": med_s <= 5 * med_p,
            "note": f"wake-answer: {TRIALS} interleaved rounds, `python -m looop answer ID yes` "
            "of an ask made untimed before it, paired with `python -c pass` in alternating "
            "order; baseline = python -c pass's median",
        },
        {
            "name": "empty home's processes' wakeups between beats (no sensor, no worker)",
            "value": round(rate, 3),
            "min": None,
            "max": None,
            "unit": "/s",
            "baseline": 2.2,
            "ratio": None,
            "target": "<= 0.2 /s",
            "ok": rate <= 0.2,
            "note": "wake-idle: voluntary_ctxt_switches over 45 s inside a 60 s sleep of a home "
            f"with no sensor and no worker ({split}); baseline = issue 56's measure on the "
            "old main (the watchdog's 2 Hz poll)",
        },
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
