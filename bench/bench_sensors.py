"""The skip beat against bash running the same sensors, interleaved in the same run.

A skip beat is what most beats are: every sensor runs, the world hashes the same, no AI is
called. The baseline is a real program doing the same work: bash starting every sensor at
once, each one's stdout and stderr captured in its own file (we capture both too), then
waiting for all. Rounds alternate ours and bash, pair by pair, so a noisy moment hits both.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from looop.core.cgroup import Pen
from looop.core.context import Ctx
from looop.core.events import Emitter
from looop.home.clock import SystemClock
from looop.home.paths import Paths
from looop.loop.pulse import Pulse
from looop.loop.tick import tick
from looop.sense import sense

SLEEPY = '#!/bin/sh\nsleep 0.1\necho \'{"signal":{"ok":true}}\'\n'
TRIVIAL = "#!/bin/sh\necho '{\"signal\":{}}'\n"
NOOP = 'printf \'%s\' \'{"action":"noop","journal":"bench"}\' > .decision.json'
# every sensor at once, each one's output captured in its own files, then wait for all
BASH = 'for s in "$1"/*.sh; do n=${s##*/}; "$s" >"$2/$n.out" 2>"$2/$n.err" & done; wait'
# the same, output thrown away: reported beside it, so the choice of baseline is visible
BASH_NULL = 'for s in "$1"/*.sh; do "$s" >/dev/null 2>&1 & done; wait'
CLI_ROUNDS = 25
PULSE_ROUNDS = {100: 31, 500: 11}


def _looop_bin() -> str:
    return str(Path(sys.executable).parent / "looop")


def _env(data: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(data.parent),
        "LANG": "C.UTF-8",
        "LOOOP_DATA_DIR": str(data),
    }


def _data(root: Path, count: int, body: str = TRIVIAL) -> Path:
    """A data dir with `count` copies of one sensor and a runner that says noop."""
    data = root / "data"
    (data / "sensors").mkdir(parents=True)
    for i in range(count):
        script = data / "sensors" / f"s{i:03d}.sh"
        script.write_text(body)
        script.chmod(0o755)
    cfg = {"tick_command": NOOP, "worker_command": "x {{prompt_file}}"}
    (data / "config.json").write_text(json.dumps(cfg))
    return data


def _cli(data: Path, **extra: str) -> Callable[[], None]:
    def run() -> None:
        _cli_tick(data, **extra)

    return run


def _cli_tick(data: Path, **extra: str) -> str:
    """`looop tick` as a user runs it; its stderr (the beat's lines)."""
    proc = subprocess.run(
        [_looop_bin(), "tick"],
        cwd=data.parent,
        env={**_env(data), **extra},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"looop tick failed: {proc.stderr.strip()}")
    return proc.stderr


def _skip_world(data: Path) -> None:
    """Commit the world once (the first beat decides noop), then check a beat skips."""
    _cli_tick(data)
    if "world unchanged" not in _cli_tick(data):
        raise RuntimeError("the bench world did not settle: a second beat still decided")


def _bash(data: Path, scratch: Path, script: str = BASH) -> Callable[[], None]:
    def run() -> None:
        subprocess.run(
            ["bash", "-c", script, "bash", str(data / "sensors"), str(scratch)],
            stdin=subprocess.DEVNULL,
            check=True,
        )

    return run


def _pairs(
    ours: Callable[[], None], base: Callable[[], None], rounds: int
) -> tuple[list[float], list[float]]:
    """Interleaved wall times: ours, bash, ours, bash… after one warm-up of each."""
    ours()
    base()
    a: list[float] = []
    b: list[float] = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        ours()
        a.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        base()
        b.append(time.perf_counter() - t0)
    return a, b


def _ratio_row(
    name: str, ours: list[float], base: list[float], limit: float, note: str | None = None
) -> dict[str, object]:
    med, bmed = statistics.median(ours), statistics.median(base)
    # the median of the pair-by-pair ratios: each pair ran back to back, so a busy moment
    # on a shared machine slows both sides of it
    ratio = statistics.median(a / b for a, b in zip(ours, base, strict=True))
    row: dict[str, object] = {
        "name": name,
        "value": round(med * 1000, 1),
        "min": round(min(ours) * 1000, 1),
        "max": round(max(ours) * 1000, 1),
        "unit": "ms",
        "baseline": round(bmed * 1000, 1),
        "ratio": round(ratio, 2),
        "target": f"ratio <= {limit}",
        "ok": ratio <= limit,
    }
    if note:
        row["note"] = note
    return row


def _pulse_ctx(data: Path, sink: TextIO) -> Ctx:
    """The Ctx a running pulse beats on: events recorded, its log lines written out."""
    paths = Paths.at(data)
    clock = SystemClock()
    events = Emitter(clock=clock, events_path=paths.events, stream=sink, fmt="human")
    return Ctx(paths=paths, clock=clock, env=_env(data), events=events)


def _pulse_beat(pulse: Pulse) -> Callable[[], None]:
    """What `looop up` does per beat: tick, choose its sleep, say and record it."""

    def run() -> None:
        out = tick(pulse.ctx, memo=pulse.memo)  # as Pulse._loop calls it
        if out.status != "skip":
            raise RuntimeError(f"a bench beat did not skip: {out.status} {out.error or ''}")
        secs, reason, _ = pulse.choose_sleep(out)
        ev = pulse.ctx.events
        ev.emit("info", "sleep", f"next beat in {secs}s ({reason})", secs=secs, reason=reason)
        ev.record("pulse_sleep", secs=secs, reason=reason, until="-")

    return run


class _PulseProc:
    """A pulse of its own, as `looop up` runs one: a process that only beats (a fork of this
    one, its sensors' pen kept from beat to beat), one beat per byte on a pipe. The bench
    spawns its bash baselines, which a pulse never does between its beats: were the pulse
    this process, each would take it out of its pen. The pipe's round trip is ours."""

    def __init__(self, data: Path, sink: TextIO) -> None:
        ask_r, self.ask = os.pipe()
        self.answer, done_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the pulse
            os.close(self.ask)
            os.close(self.answer)
            code = 0
            try:
                ctx = _pulse_ctx(data, sink)
                ctx.pen = Pen()
                beat = _pulse_beat(Pulse(ctx))
                while os.read(ask_r, 1) == b"b":
                    beat()
                    os.write(done_w, b"k")
                ctx.pen.close()
            except BaseException as e:
                os.write(done_w, f"!{e}".encode())
                code = 1
            os._exit(code)
        os.close(ask_r)
        os.close(done_w)

    def beat(self) -> None:
        os.write(self.ask, b"b")
        got = os.read(self.answer, 4096)
        if got != b"k":
            raise RuntimeError(f"the bench's pulse failed: {got.decode(errors='replace')}")

    def stop(self) -> None:
        os.write(self.ask, b"q")
        os.close(self.ask)
        os.close(self.answer)
        os.waitpid(self.pid, 0)


def _files(data: Path) -> dict[str, tuple[int, int, int]]:
    """inode, mtime_ns and size of every file under the data dir."""
    out: dict[str, tuple[int, int, int]] = {}
    for d, _, names in os.walk(data):
        for n in names:
            p = os.path.join(d, n)
            st = os.lstat(p)
            out[os.path.relpath(p, data)] = (st.st_ino, st.st_mtime_ns, st.st_size)
    return out


def _touched(data: Path, beat: Callable[[], None]) -> tuple[list[str], bool]:
    """Files a skip beat changed (created, removed, renamed over, written or touched) other
    than events.jsonl, and whether events.jsonl only grew in place (same inode, old bytes kept)."""
    events = data / "events.jsonl"
    before, old = _files(data), events.read_bytes()
    beat()
    after = _files(data)
    changed = sorted(
        k for k in set(before) | set(after) if k != "events.jsonl" and before.get(k) != after.get(k)
    )
    grew = before["events.jsonl"][0] == after["events.jsonl"][0] and events.read_bytes().startswith(
        old
    )
    return changed, grew


def _sleepy_row(root: Path, sink: TextIO) -> dict[str, object]:
    """20 sensors sleeping 0.1 s cost one of them: concurrency, not 20x."""

    def beat_of(count: int) -> Callable[[], None]:
        ctx = _pulse_ctx(_data(root / f"sleepy{count}", count, SLEEPY), sink)
        knobs = ctx.knobs()

        def run() -> None:
            sense(ctx, knobs)

        return run

    many, one = _pairs(beat_of(20), beat_of(1), 7)
    return _ratio_row("sense: 20 sensors sleeping 0.1 s vs one of them", many, one, 1.5)


def run() -> list[dict[str, object]]:
    # An installed wheel is byte-compiled once by pip: so is the checkout, before timing.
    import looop

    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(Path(looop.__file__).parent)], check=True
    )
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="looop-bench-") as tmp, open(os.devnull, "w") as sink:
        root = Path(tmp)
        rows.append(_sleepy_row(root, sink))
        # the skip beat as a command: `looop tick` on 100 sensors, world unchanged
        data = _data(root / "cli", 100)
        _skip_world(data)
        scratch = root / "cli-bash"
        scratch.mkdir()
        ours, base = _pairs(_cli(data), _bash(data, scratch), CLI_ROUNDS)
        changed, grew = _touched(data, _cli(data))
        note = (
            'skip beat: bash baseline = `for s in sensors/*.sh; do "$s" >out 2>err & '
            "done; wait`, each sensor's output captured in its own files; ratio = the median "
            "of the pair-by-pair ratios, rounds interleaved pair by pair "
            f"({CLI_ROUNDS} CLI, {PULSE_ROUNDS[100]}/{PULSE_ROUNDS[500]} in the pulse); the "
            "CLI is the installed console script, each tick in its own process; the pulse "
            "beat is tick + choose_sleep + its sleep line in one process, as `looop up` runs "
            "it"
        )
        rows.append(
            _ratio_row(
                "skip beat from the CLI (`looop tick`), 100 sensors, vs bash running them",
                ours,
                base,
                1.5,
                note=note,
            )
        )
        # the skip beat inside a running pulse, 100 and 500 sensors
        pulse_changed: list[str] = []
        for count, rounds in PULSE_ROUNDS.items():
            pdata = _data(root / f"pulse{count}", count)
            _skip_world(pdata)
            pulse = _PulseProc(pdata, sink)
            pscratch = root / f"pulse{count}-bash"
            pscratch.mkdir()
            ours, base = _pairs(pulse.beat, _bash(pdata, pscratch), rounds)
            row = _ratio_row(
                f"skip beat inside the pulse, {count} sensors, vs bash running them",
                ours,
                base,
                1.2,
            )
            nulled, nbase = _pairs(pulse.beat, _bash(pdata, pscratch, BASH_NULL), rounds)
            null_ratio = statistics.median(a / b for a, b in zip(nulled, nbase, strict=True))
            row["note"] = (
                f"pulse {count}: against bash throwing the output away (>/dev/null 2>&1) in "
                f"the same run, {statistics.median(nulled) * 1000:.1f} ms vs "
                f"{statistics.median(nbase) * 1000:.1f} ms, ratio {null_ratio:.2f}"
            )
            rows.append(row)
            if count == 100:
                pulse_changed, pulse_grew = _touched(pdata, pulse.beat)
                grew = grew and pulse_grew
            pulse.stop()
        files = len(_files(data))
        rows.append(
            {
                "name": "files a skip beat changed (CLI and pulse, of every file in the data dir)",
                "value": len(changed) + len(pulse_changed),
                "unit": "",
                "baseline": None,
                "ratio": None,
                "target": "0 (no write, rename or touch; events.jsonl only appended)",
                "ok": not changed and not pulse_changed and grew,
                "note": (
                    "skip-beat writes: inode + mtime_ns + size of every file under the data dir "
                    f"({files}) before and after one beat; events.jsonl (the beat's own log "
                    "lines, which `looop status` reads) may only grow in place"
                    + (
                        f"; changed: {', '.join(changed + pulse_changed)}"
                        if changed or pulse_changed
                        else ""
                    )
                ),
            }
        )
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
