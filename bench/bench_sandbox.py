"""What the sandbox costs a worker's start: `looop worker start --sandbox` against the same
command with `--no-sandbox`, whole commands as a user types them, interleaved pair by pair;
the sandboxed start waits until the worker runs its program inside (the home's sandbox host
wraps its line, then bubblewrap starts and the box hands its proxy ports to the home's
filter), so a missing program fails the verb as unsandboxed; and, beside it, how long after the
verb returns the worker's own command has run. And what `--repo` (a worker's own git worktree)
costs against making the worktree by hand."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from looop.home.paths import Paths

ROUNDS = 11
START_MS = 1000  # the sandboxed verb, the box's start included
AFTER_MS = 250  # the worker's command after the verb returned


def _spread(xs: list[float]) -> dict[str, float]:
    return {
        "value": round(statistics.median(xs) * 1000, 1),
        "min": round(min(xs) * 1000, 1),
        "max": round(max(xs) * 1000, 1),
    }


def _srt() -> str:
    repo = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(repo))
    from tests.sandbox.install import install

    return str(install())


def _start(looop: str, wid: str, flag: str, mark: Path, env: dict[str, str]) -> tuple[float, float]:
    """(the command's wall, from its return until the worker's command has run: its mark file
    exists; 0 when it ran before the verb returned)."""
    cmd = f"touch {mark}; exec sleep 600 # {{{{prompt_file}}}}"
    t0 = time.perf_counter()
    subprocess.run(
        [looop, "worker", "start", wid, "--command", cmd, flag, "go"],
        env=env,
        stdout=subprocess.DEVNULL,
        check=True,
    )
    wall = time.perf_counter() - t0
    deadline = t0 + 30
    while not mark.exists():  # polled: nothing outside the sandbox is told when it runs
        if time.perf_counter() > deadline:
            raise RuntimeError(f"worker {wid} never ran its command")
        time.sleep(0.002)
    return wall, max(0.0, time.perf_counter() - t0 - wall)


def run() -> list[dict[str, object]]:
    import looop

    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(Path(looop.__file__).parent)], check=True
    )
    srt = _srt()
    looop_bin = str(Path(sys.executable).parent / "looop")
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as d:
        data = Path(d) / "data"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": d,
            "LANG": "C.UTF-8",
            "LOOOP_DATA_DIR": str(data),
            "LOOOP_SRT": srt,
            "LOOOP_MAX_WORKERS": "0",
        }
        subprocess.run([looop_bin, "init"], env=env, capture_output=True, check=True)
        _start(looop_bin, "warm", "--no-sandbox", Path(d) / "warm", env)  # host, page cache
        subprocess.run([looop_bin, "kill", "warm"], env=env, capture_output=True)
        # the home's first sandboxed start also starts its sandbox host (once per home)
        first, _ = _start(
            looop_bin, "swarm", "--sandbox", Paths.at(data).rooms / "swarm" / "work" / "ran", env
        )
        subprocess.run([looop_bin, "kill", "swarm"], env=env, capture_output=True)
        walls: dict[str, list[float]] = {"--sandbox": [], "--no-sandbox": []}
        ran: dict[str, list[float]] = {"--sandbox": [], "--no-sandbox": []}
        for i in range(ROUNDS):
            # alternate which goes first, so neither always runs on a cache the other warmed
            order = ["--sandbox", "--no-sandbox"] if i % 2 == 0 else ["--no-sandbox", "--sandbox"]
            for flag in order:
                wid = f"{'s' if flag == '--sandbox' else 'p'}{i}"
                # the sandboxed worker can write only its workspace: its mark goes there
                mark = Paths.at(data).rooms / wid / "work" / "ran"
                wall, up = _start(
                    looop_bin, wid, flag, mark if flag == "--sandbox" else Path(d) / wid, env
                )
                walls[flag].append(wall)
                ran[flag].append(up)
                subprocess.run([looop_bin, "kill", wid], env=env, capture_output=True)
        sb, plain = walls["--sandbox"], walls["--no-sandbox"]
        added = [a - b for a, b in zip(sb, plain, strict=True)]
        rows.append(
            {
                "name": "looop worker start --sandbox (whole command, until the worker runs)",
                **_spread(sb),
                "unit": "ms",
                "baseline": round(statistics.median(plain) * 1000, 1),
                "ratio": round(statistics.median(sb) / statistics.median(plain), 2),
                "target": f"<= {START_MS} ms",
                "ok": statistics.median(sb) <= START_MS / 1000,
                "note": (
                    f"sandbox start: baseline = the same `looop worker start --no-sandbox`, "
                    f"{ROUNDS} interleaved pairs; the sandboxed verb waits until the waiter "
                    "inside says the worker runs its program (the home's sandbox host wraps "
                    "its line, bubblewrap starts, the box hands its ports to the filter); the "
                    "home's first sandboxed "
                    f"start, which also starts that host, took {first * 1000:.0f} ms (not in the "
                    "rounds); added per pair min/median/max "
                    f"{min(added) * 1000:.0f}/{statistics.median(added) * 1000:.0f}/"
                    f"{max(added) * 1000:.0f} ms"
                ),
            }
        )
        sr, pr = ran["--sandbox"], ran["--no-sandbox"]
        rows.append(
            {
                "name": "sandboxed worker: its command runs after worker start returns",
                **_spread(sr),
                "unit": "ms",
                "baseline": round(statistics.median(pr) * 1000, 1),
                "ratio": None,  # both are near 0: a ratio would say nothing
                "target": f"<= {AFTER_MS} ms",
                "ok": statistics.median(sr) <= AFTER_MS / 1000,
                "note": (
                    "sandbox first act: from the return of `looop worker start` until the "
                    "worker's command has touched a file (0: before it returned), against "
                    "--no-sandbox"
                ),
            }
        )
        rows.append(_worktree_row(looop_bin, env, Path(d)))
        rows += _door_rows(looop_bin, env, Path(d))
    return rows


DOOR_ROUNDS = 21
DOOR_RATIO = 3.0
LOCAL_DOOR_RATIO = 1.5
# A worker's own contract verb, timed where it runs: N rounds, each a whole `python -c pass`
# and a whole `$LOOOP_BIN claim` ("direct": the worker writes claims/ itself, its door unset)
CLAIMS = r"""
out=$1; n=$2; py=$3
[ "$4" = direct ] && unset LOOOP_DOOR
for i in $(seq 1 "$n"); do
  a=$(date +%s%N); "$py" -c pass; b=$(date +%s%N)
  "$LOOOP_BIN" claim "bench-$i" >/dev/null || touch "$out/failed"
  c=$(date +%s%N)
  echo $((b - a)) >> "$out/passes"
  echo $((c - b)) >> "$out/times"
done
touch "$out/end"
exec sleep 600
"""


def _claims(
    looop: str, wid: str, flag: str, out: str, env: dict[str, str], d: Path, mode: str = "door"
) -> tuple[list[float], list[float]]:
    """The seconds each of a worker's claims took, and each `python -c pass` beside them, as
    the worker timed them."""
    script = d / "claims.sh"
    script.write_text(CLAIMS)
    line = f'bash {script} "{out}" {DOOR_ROUNDS} {sys.executable} {mode} # {{{{prompt_file}}}}'
    subprocess.run(
        [looop, "worker", "start", wid, "--command", line, flag, "go"],
        env=env,
        stdout=subprocess.DEVNULL,
        check=True,
    )
    folder = Path(
        out.replace(
            "$LOOOP_WORKSPACE", str(Paths.at(Path(env["LOOOP_DATA_DIR"])).rooms / wid / "work")
        )
    )
    deadline = time.monotonic() + 120
    while not (folder / "end").exists():  # polled: the box tells nothing outside when done
        if time.monotonic() > deadline:
            raise RuntimeError(f"worker {wid} never finished its claims")
        time.sleep(0.05)
    subprocess.run([looop, "kill", wid], env=env, capture_output=True)
    if (folder / "failed").exists():  # a verb that failed fast would time nothing real
        raise RuntimeError(f"worker {wid}: a claim failed ({flag})")
    times = [int(t) / 1e9 for t in (folder / "times").read_text().split()]
    return times, [int(t) / 1e9 for t in (folder / "passes").read_text().split()]


def _door_rows(looop: str, env: dict[str, str], d: Path) -> list[dict[str, object]]:
    """A worker's `claim` through its door — a sandboxed one's (its box's door) against the
    same claim written directly; an unsandboxed one's (the session host's door) against
    `python -c pass` — each timed inside its worker, the three kinds in rotating order."""
    kinds = [
        ("box", "--sandbox", "door"),
        ("direct", "--no-sandbox", "direct"),
        ("local", "--no-sandbox", "door"),
    ]
    got: dict[str, list[float]] = {"box": [], "direct": [], "local": [], "pass": []}
    for i in range(3):
        for kind, flag, mode in kinds[i:] + kinds[:i]:
            out = "$LOOOP_WORKSPACE"
            if flag == "--no-sandbox":
                mine = d / f"{kind}{i}"
                mine.mkdir()
                out = str(mine)
            times, passes = _claims(looop, f"{kind[0]}c{i}", flag, out, env, d, mode)
            got[kind] += times
            if kind == "local":
                got["pass"] += passes
    box, direct, local, bare = (
        statistics.median(got[k]) for k in ("box", "direct", "local", "pass")
    )
    return [
        {
            "name": 'a sandboxed worker\'s contract verb through its door ("$LOOOP_BIN" claim)',
            **_spread(got["box"]),
            "unit": "ms",
            "baseline": round(direct * 1000, 1),
            "ratio": round(box / direct, 2),
            "target": f"ratio <= {DOOR_RATIO}",
            "ok": box / direct <= DOOR_RATIO,
            "note": (
                "door: each claim timed inside its worker (date +%s%N around the whole verb), "
                f"{DOOR_ROUNDS} per worker, three workers of each kind in rotating order; "
                "baseline = the same claim of an unsandboxed worker writing claims/ itself "
                "(its door unset). Through the box's door the verb is the box's looop start, "
                "one POST through the box's proxy to the home's filter, which answers it in "
                "its own process (contract/answering.py)"
            ),
        },
        {
            "name": 'an unsandboxed worker\'s contract verb through its door ("$LOOOP_BIN" claim)',
            **_spread(got["local"]),
            "unit": "ms",
            "baseline": round(bare * 1000, 1),
            "ratio": round(local / bare, 2),
            "target": f"ratio <= {LOCAL_DOOR_RATIO} (python -c pass)",
            "ok": local / bare <= LOCAL_DOOR_RATIO,
            "note": (
                "local door: each claim timed inside its worker as above, each beside a "
                "`python -c pass` of the same interpreter (the baseline, timed in the same "
                "workers); the verb is looop's start and one JSON line to the home's session "
                "host, which answers it in its own process (sessions/hostdoor.py); the same "
                f"claim written directly took {direct * 1000:.1f} ms (median)"
            ),
        },
    ]


REPO_ADDED_MS = 100


def _worktree_row(looop: str, env: dict[str, str], d: Path) -> dict[str, object]:
    """`looop worker start --repo` against doing it by hand: `git worktree add -b` then a
    plain `looop worker start` (both commands timed together), interleaved pair by pair."""
    repo = d / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo)]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    for n in range(50):  # a small project, not an empty one
        (repo / f"f{n}.txt").write_text(f"file {n}\n" * 20)
    subprocess.run([*git, "add", "-A"], check=True)
    ident = ["-c", "user.name=b", "-c", "user.email=b@b"]
    subprocess.run([*git, *ident, "commit", "-qm", "start"], check=True)
    ours: list[float] = []
    hand: list[float] = []
    for i in range(ROUNDS):
        for kind in ("ours", "hand") if i % 2 == 0 else ("hand", "ours"):
            wid = f"{kind[0]}r{i}"
            t0 = time.perf_counter()
            if kind == "ours":
                argv = [
                    looop,
                    "worker",
                    "start",
                    wid,
                    "--command",
                    "sleep 600 # {{prompt_file}}",
                    "--repo",
                ]
                argv += [str(repo), "--no-sandbox", "go"]
                subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, check=True)
                ours.append(time.perf_counter() - t0)
            else:
                tree = d / "by-hand" / wid
                add = [*git, "worktree", "add", "-q", "-b", f"hand/{wid}", str(tree)]
                subprocess.run(add, check=True, capture_output=True)
                argv = [looop, "worker", "start", wid, "--command", "sleep 600 # {{prompt_file}}"]
                subprocess.run(
                    [*argv, "--no-sandbox", "go"], env=env, stdout=subprocess.DEVNULL, check=True
                )
                hand.append(time.perf_counter() - t0)
            subprocess.run([looop, "kill", wid], env=env, capture_output=True)
    added = [a - b for a, b in zip(ours, hand, strict=True)]
    return {
        "name": "looop worker start --repo (whole command)",
        **_spread(ours),
        "unit": "ms",
        "baseline": round(statistics.median(hand) * 1000, 1),
        "ratio": round(statistics.median(ours) / statistics.median(hand), 2),
        "target": f"<= {REPO_ADDED_MS} ms over git worktree add + worker start",
        "ok": statistics.median(ours) - statistics.median(hand) <= REPO_ADDED_MS / 1000,
        "note": (
            "worktree start: baseline = `git worktree add -b` then `looop worker start` by "
            f"hand (50-file repo), {ROUNDS} interleaved pairs; added per pair min/median/max "
            f"{min(added) * 1000:.0f}/{statistics.median(added) * 1000:.0f}/"
            f"{max(added) * 1000:.0f} ms"
        ),
    }
