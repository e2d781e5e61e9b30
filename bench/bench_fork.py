"""A fork-heavy worker's CPU under looop's containment against bare (issue 56).

The worker is a shell loop of short forks (`for i in $(seq N); do /bin/true; done`), and its
CPU is what the loop itself reports at its end (bash's `times`: the shell and every child it
waited for, user + system), so every arm counts the same processes the same way. Arms, one
round each in a shuffled order, rounds repeated: bare (a child of this bench), under tmux (its
own server, kept warm), under a looop supervisor as the pulse starts a worker (session host,
PTY, its cgroup with the default pids and memory bounds), and the same supervisor with one
part switched off in turn: no bounds (the run group alone), no cgroup at all (the subreaper
sweep). Each supervisor's own CPU while its worker ran is read from /proc too.
LOOOP_BENCH_FORKS sets N (default 5000), LOOOP_BENCH_FORK_ROUNDS the rounds (default 7).
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

FORKS = int(os.environ.get("LOOOP_BENCH_FORKS", "5000"))
ROUNDS = int(os.environ.get("LOOOP_BENCH_FORK_ROUNDS", "7"))
PIDS, MEMORY = 512, 4 << 30  # the knobs' defaults (home/knobs.py)
TICK = os.sysconf("SC_CLK_TCK")


def _loop(out: Path) -> str:
    return f"for i in $(seq {FORKS}); do /bin/true; done; times > {out}.part; mv {out}.part {out}"


def _times(out: Path) -> float:
    """CPU-s from bash's `times` (two lines: the shell's, then its children's)."""
    total = 0.0
    for line in out.read_text().splitlines()[:2]:
        for field in line.split():
            mins, secs = field.rstrip("s").split("m")
            total += int(mins) * 60 + float(secs)
    return total


def _cpu(pid: int) -> float:
    text = Path(f"/proc/{pid}/stat").read_text()
    return sum(int(x) for x in text[text.rindex(")") + 2 :].split()[11:15]) / TICK


def _await(out: Path, secs: float = 900) -> None:
    deadline = time.monotonic() + secs
    while not out.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {out.name} within {secs:.0f}s")
        time.sleep(0.1)


class Arms:
    def __init__(self, d: Path, tmux: str | None) -> None:
        self.d, self.tmux, self.n = d, tmux, 0
        self.root = d / "data"
        self.root.mkdir()
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(d)}
        self.env["LANG"] = "C.UTF-8"
        self.supervisor: dict[str, list[float]] = {}
        if tmux:
            subprocess.run(
                [tmux, "-L", self.sock, "new-session", "-d", "-s", "keep", "sleep 3600"],
                env=self.env,
                check=True,
            )

    @property
    def sock(self) -> str:
        return f"looop-bench-fork-{os.getpid()}"

    def run(self, arm: str) -> float:
        self.n += 1
        out = self.d / f"o{self.n}"
        if arm == "bare":
            subprocess.run(["bash", "-c", _loop(out)], env=self.env, check=True)
        elif arm == "tmux":
            assert self.tmux
            argv = [self.tmux, "-L", self.sock, "new-session", "-d", "-s", f"t{self.n}"]
            subprocess.run([*argv, "bash", "-c", _loop(out)], env=self.env, check=True)
            _await(out)
        else:
            self._looop(arm, out)
        return _times(out)

    def _looop(self, arm: str, out: Path) -> None:
        from looop.sessions.client import kill
        from looop.sessions.spawner import spawn

        env = dict(self.env, LOOOP_NO_CGROUP="1") if arm == "looop, no cgroup" else self.env
        bounds = (PIDS, MEMORY) if arm == "looop" else None
        sid = f"f{self.n}"
        argv = ["bash", "-c", _loop(out) + "; exec sleep 60"]
        sess = spawn(self.root, sid, argv, cwd=self.root, env=env, bounds=bounds)
        assert sess.supervisor_pid
        want = "sweep" if arm == "looop, no cgroup" else "cgroup"
        if sess.contain != want:
            raise RuntimeError(f"{arm}: contained by {sess.contain}, not {want}")
        was = _cpu(sess.supervisor_pid)
        _await(out)
        self.supervisor.setdefault(arm, []).append(_cpu(sess.supervisor_pid) - was)
        kill(self.root, sid)

    def close(self) -> None:
        from looop.sessions.spawner import stop_host

        if self.tmux:
            subprocess.run([self.tmux, "-L", self.sock, "kill-server"], capture_output=True)
        stop_host("/tmp", str(self.root))


def _spread(xs: list[float]) -> dict[str, float]:
    return {
        "value": round(statistics.median(xs), 3),
        "min": round(min(xs), 3),
        "max": round(max(xs), 3),
    }


def run() -> list[dict[str, object]]:
    tmux = shutil.which("tmux")
    arms = ["bare", "looop", "looop, no bounds", "looop, no cgroup"] + (["tmux"] if tmux else [])
    got: dict[str, list[float]] = {a: [] for a in arms}
    with tempfile.TemporaryDirectory(prefix="looop-bench-fork-") as t:
        box = Arms(Path(t), tmux)
        try:
            box.run("looop")  # untimed: starts the session host
            for _ in range(ROUNDS):
                order = list(arms)
                random.shuffle(order)
                for arm in order:
                    got[arm].append(box.run(arm))
        finally:
            box.close()
    # each round's arm over the same round's bare run: the rounds share the load they ran in
    ratios = {a: [x / b for x, b in zip(got[a], got["bare"], strict=True)] for a in arms}
    bare = statistics.median(got["bare"])
    parts = "; ".join(
        f"{a} {statistics.median(got[a]):.2f} s (ratio min/median/max "
        + "/".join(f"{f(ratios[a]):.3f}" for f in (min, statistics.median, max))
        + ")"
        for a in arms[1:]
    )
    sup = ", ".join(f"{a} {max(v):.2f}" for a, v in box.supervisor.items())
    r = ratios["looop"]
    return [
        {
            "name": f"a fork-heavy worker's CPU under looop's containment ({FORKS} forks)",
            **_spread(r),
            "unit": "x bare",
            "baseline": round(bare, 3),
            "ratio": round(statistics.median(r), 3),
            "target": "<= 1.03x bare",
            "ok": statistics.median(r) <= 1.03,
            "note": f"fork: {ROUNDS} rounds, arms shuffled in each, the worker's own CPU from "
            f"bash's `times` (shell + children); value/min/max = that round's looop over its "
            f"bare run; bare median {bare:.2f} CPU-s; {parts}; the supervisor's own CPU while "
            f"its worker ran (max of rounds, CPU-s): {sup}; load average "
            f"{os.getloadavg()[0]:.1f} at the end",
        }
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
