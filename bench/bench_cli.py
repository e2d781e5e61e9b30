"""Cold start of the hot verbs against a bare interpreter, interleaved pair by pair in the
same run: each round times `python -c pass` (the same venv's python) and the verb, in
alternating order, as whole commands (the installed console script, a new process each)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROUNDS = 25
TARGET = 2.0  # the worker contract's verbs, served without click (issue 66)
# Every verb a human types goes through click, whose own import is most of a start (issue 66):
# within 5x a bare interpreter; `--help` lists the verbs from a static table within 3x.
HUMAN = 5.0
TARGETS = {"--help": 3.0, **dict.fromkeys(("version", "status", "ls", "needs"), HUMAN)}
TARGETS |= dict.fromkeys(("send", "key", "shot", "log"), HUMAN)
# In round order: claim then unclaim (each does its real write), tell then told (each round's
# told reads the message just told), against a live worker `w1` running cat; send and key type
# into it (cat echoes, so its screen and log grow every round), shot asks its supervisor for
# the screen, log reads the last lines of its log.
VERBS = [
    ["--help"],
    ["version"],
    ["status"],
    ["ls"],
    ["needs"],
    ["claim", "bench-lease", "--session", "w1"],
    ["unclaim", "bench-lease", "--session", "w1"],
    ["tell", "w1", "keep going"],
    ["told", "w1"],
    ["cost", "report", "session", "w1", "claude", "0.01"],
    ["send", "w1", "keep going"],
    ["key", "w1", "Enter"],
    ["shot", "w1"],
    ["log", "w1", "-n", "20"],
]


def _time(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def _seed(data: Path, now: float) -> None:
    """A data dir as a user's looks after a few days: the starter files, the config `looop
    init` writes, a busy events.jsonl, a journal, a cost ledger with spend today and a decide
    ledger (rows from looop's own writers), so status and ls read what they read for real."""
    import json

    from looop.home.eventlog import record_line
    from looop.home.paths import Paths
    from looop.home.stamps import utc_stamp
    from looop.runners.presets import default_config_obj
    from looop.seed import ensure_data_dir
    from looop.spend.record import append_cost

    paths = Paths.at(data)
    ensure_data_dir(paths)
    paths.config.write_text(json.dumps(default_config_obj(), indent=2) + "\n")
    lines = []
    for i in range(300):
        t = now - (300 - i) * 60
        lines += [
            record_line("tick_start", {"run_id": f"r{i}"}, t),
            record_line("world_unchanged", {"hash": f"{i:064x}"}, t + 0.2),
            record_line("pulse_sleep", {"until": utc_stamp(t + 60), "reason": "idle"}, t + 0.3),
        ]
    paths.events.write_text("".join(line + "\n" for line in lines))
    journal = [f"- {utc_stamp(now - i * 600)} noop · settled\n" for i in range(200, 0, -1)]
    paths.journal.write_text("".join(journal))
    for i in range(150, 0, -1):  # three days of metered beats, oldest first
        append_cost(paths.cost_ledger, now - i * 1800, "tick", f"r{i}", "claude", 0.0123)
    paths.decide_ledger.write_text(json.dumps({"attempts": [now - i * 300 for i in range(12)]}))


# The moves a person runs now and then, each a whole command in its own process (issue 53: under
# 150 ms on a quiet machine): a beat whose world did not change (the gate skips the decider),
# a kill of a live worker, a start of a trivial custom command. Their own homes: a kill or a
# start changes the world a beat hashes.
MOVE_ROUNDS = 15
MOVE_TARGET_MS = 150.0
NOOP = 'printf \'%s\' \'{"action":"noop","journal":"bench"}\' > .decision.json'
START_ARGS = ["--no-sandbox", "--command", "tail -f {{prompt_file}}", "hi"]


def _moves_home(looop_bin: str, data: Path, env: dict[str, str]) -> None:
    """The starter files and a runner that says noop; its world settled (a beat skips)."""
    import json

    from looop.home.paths import Paths
    from looop.seed import ensure_data_dir

    data.mkdir()
    ensure_data_dir(Paths.at(data))
    cfg = {"tick_command": NOOP, "worker_command": "tail -f {{prompt_file}}"}
    (data / "config.json").write_text(json.dumps(cfg))
    tick = [looop_bin, "tick"]
    for _ in range(2):
        said = subprocess.run(tick, env=env, capture_output=True, text=True, check=True).stderr
    if "world unchanged" not in said:
        raise RuntimeError(f"the bench world did not settle: a second beat said {said!r}")


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, cpu) of a whole command: cpu is user + system of it and the children it waited
    for (a loaded machine stretches the wall, hardly the cpu)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = _time(cmd, env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


Moves = dict[str, dict[str, list[float]]]


def _moves(looop_bin: str, root: Path) -> Moves:
    """Each move's and python -c pass's walls and cpus ("ours", "base", "ours cpu", "base
    cpu") for tick, kill and worker start, each pair interleaved in alternating order; a
    kill's worker is started untimed first, a started worker killed untimed after."""
    base_cmd = [sys.executable, "-c", "pass"]
    envs = {}
    for name in ("beat", "workers"):
        envs[name] = dict(os.environ, LOOOP_DATA_DIR=str(root / name))
        envs[name].pop("PYTHONDONTWRITEBYTECODE", None)
    _moves_home(looop_bin, root / "beat", envs["beat"])
    (root / "workers").mkdir()
    got: Moves = {}
    for row in ("tick", "kill", "worker start"):
        got[row] = {"ours": [], "base": [], "ours cpu": [], "base cpu": []}
    for r in range(-2, MOVE_ROUNDS):  # two rounds warm the page cache, not counted
        for row, sinks in got.items():
            wid = f"b{r + 2}"
            env = envs["beat" if row == "tick" else "workers"]
            if row == "tick":
                cmd = [looop_bin, "tick"]
            elif row == "kill":
                _time([looop_bin, "worker", "start", wid, *START_ARGS], env)
                cmd = [looop_bin, "kill", wid]
            else:
                cmd = [looop_bin, "worker", "start", f"s{wid}", *START_ARGS]
            pair = [("base", base_cmd), ("ours", cmd)]
            for sink, c in pair if r % 2 else reversed(pair):
                wall, cpu = _timed(c, env)
                if r >= 0:
                    sinks[sink].append(wall)
                    sinks[f"{sink} cpu"].append(cpu)
            if row == "worker start":
                _time([looop_bin, "kill", f"s{wid}"], env)
    return got


def _move_rows(got: Moves) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    cpus = []
    for name, sinks in got.items():
        ours, base = sinks["ours"], sinks["base"]
        med = statistics.median(ours) * 1000
        bmed = statistics.median(base) * 1000
        what = {"tick": "no change", "kill": "a live worker", "worker start": "--command"}[name]
        rows.append(
            {
                "name": f"looop {name} whole ({what})",
                "value": med,
                "min": min(ours) * 1000,
                "max": max(ours) * 1000,
                "unit": "ms",
                "baseline": bmed,
                "ratio": med / bmed,
                "target": f"< {MOVE_TARGET_MS:g} ms",
                "ok": med < MOVE_TARGET_MS,
            }
        )
        cpu, bcpu = (statistics.median(sinks[k]) * 1000 for k in ("ours cpu", "base cpu"))
        cpus.append(f"{name} {cpu:.0f} ms (python -c pass {bcpu:.0f} ms)")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    rows[0]["note"] = (
        f"moves: {MOVE_ROUNDS} interleaved rounds per move, each pairing it with `python -c "
        "pass` in alternating order, as whole commands of the installed console script (no "
        "beat host: each runs in its own process); tick = a beat of a settled home (the "
        "starter sensors, a runner that says noop), the gate skips the decider; kill = `looop "
        "kill ID` of a live worker (`tail -f`, started untimed just before); worker start = "
        "`looop worker start ID --no-sandbox --command 'tail -f {{prompt_file}}' hi` to its "
        "two lines (its worker killed untimed after). Target: each median under 150 ms on a "
        "quiet machine. CPU (user + system, with the children each waited for), median: "
        f"{'; '.join(cpus)}; load average at the end {load}"
    )
    return rows


# Review and land against the same git work by hand (issue 68): a worker's branch of a 10-file
# change (one commit), `looop review ID` (to a pipe) paired with `git log` + `git diff --stat` +
# `git diff` of base...branch, `looop land ID --ff` with `git merge --ff-only` of a twin branch
# of the same change. Target: within 3x the git work plus one human verb's start (5x pass).
GIT_ROUNDS = 9
GIT_FILES = 10
WORK = """for i in $(seq 1 {n}); do sed -i "s/^2$/two {r}/" f$i.txt; echo {r} >> f$i.txt; done
git commit -qam 'change {n} files'"""


# what a review or a landing loads before its own work, ended as the console ends a verb
FLOOR = (
    "import gc; gc.set_threshold(50_000); import os, subprocess, looop.verbs.console, "
    "looop.cli.root, looop.core.context; os._exit(0)"
)


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def _git_repo(path: Path) -> Path:
    path.mkdir()
    _git(path, "init", "-q", "-b", "main")
    _git(path, "config", "user.name", "b")
    _git(path, "config", "user.email", "b@x.invalid")
    for i in range(1, GIT_FILES + 1):
        (path / f"f{i}.txt").write_text("".join(f"{n}\n" for n in range(1, 51)))
    _git(path, "add", ".")
    _git(path, "commit", "-qm", "start")
    return path


def _git_moves(looop_bin: str, root: Path) -> Moves:
    """review and land --ff of a fresh worker each round (started untimed, ended), each
    paired with the same git work by hand in a twin repository, and `python -c pass`."""
    from looop.home.clock import SystemClock
    from looop.sessions.client import wait

    env = dict(os.environ, LOOOP_DATA_DIR=str(root / "git"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    (root / "git").mkdir()
    (root / "git" / "config.json").write_text('{"tick_command": "true"}')
    repo, twin = _git_repo(root / "repo"), _git_repo(root / "twin")
    got: Moves = {}
    for row in ("review", "land --ff", "pass", "floor"):
        got[row] = {"ours": [], "base": [], "ours cpu": [], "base cpu": []}
    for r in range(-1, GIT_ROUNDS):  # one round warms the page cache, not counted
        wid, work = f"g{r + 1}", WORK.format(n=GIT_FILES, r=r + 1)
        (root / "work.sh").write_text(work)
        start = ["worker", "start", wid, "--no-sandbox", "--repo", str(repo)]
        cmd = f"bash {root / 'work.sh'} # {{{{prompt_file}}}}"
        hi = [looop_bin, *start, "--command", cmd, "hi"]
        subprocess.run(hi, env=env, check=True, stdout=subprocess.DEVNULL)
        wait(root / "git", wid, 30, SystemClock())
        _git(twin, "checkout", "-q", "-b", wid)
        subprocess.run(["bash", "-c", work], cwd=twin, env=env, check=True)
        _git(twin, "checkout", "-q", "main")
        by_hand = {
            "review": [
                ["git", "-C", str(twin), "log", f"main..{wid}"],
                ["git", "-C", str(twin), "diff", "--stat", f"main...{wid}"],
                ["git", "-C", str(twin), "diff", f"main...{wid}"],
            ],
            "land --ff": [["git", "-C", str(twin), "merge", "--ff-only", "-q", wid]],
            "pass": [[sys.executable, "-c", "pass"]],
            "floor": [],  # its baseline is the pass row's, timed in the same rounds
        }
        by_looop = {
            "review": [[looop_bin, "review", wid]],
            "land --ff": [[looop_bin, "land", wid, "--ff"]],
            "pass": [[sys.executable, "-c", "pass"]],
            "floor": [[sys.executable, "-c", FLOOR]],
        }
        for row, sinks in got.items():
            pair = [("base", by_hand[row]), ("ours", by_looop[row])]
            for sink, cmds in pair if r % 2 else reversed(pair):
                timed = [_timed(c, env) for c in cmds]
                if r >= 0:
                    sinks[sink].append(sum(t[0] for t in timed))
                    sinks[f"{sink} cpu"].append(sum(t[1] for t in timed))
    return got


def _git_rows(got: Moves) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    pmed = statistics.median(got["pass"]["base"]) * 1000
    for name in ("review", "land --ff"):
        sinks = got[name]
        med, gmed = (statistics.median(sinks[k]) * 1000 for k in ("ours", "base"))
        cpu, gcpu = (statistics.median(sinks[k]) * 1000 for k in ("ours cpu", "base cpu"))
        target = 3 * gmed + 5 * pmed
        rows.append(
            {
                "name": f"looop {name} whole ({GIT_FILES}-file change)",
                "value": med,
                "min": min(sinks["ours"]) * 1000,
                "max": max(sinks["ours"]) * 1000,
                "unit": "ms",
                "baseline": gmed,
                "ratio": med / gmed,
                "target": f"< 3x git + 5x pass = {target:.0f} ms",
                "ok": med < target,
                "note": f"{name} cpu: median {cpu:.0f} ms (git by hand {gcpu:.0f} ms, "
                f"python -c pass {pmed:.0f} ms wall)",
            }
        )
    floor = statistics.median(got["floor"]["ours"]) * 1000
    rows.append(
        {
            "name": "review's and land's floor: click, the Ctx and subprocess loaded, nothing run",
            "value": floor,
            "min": min(got["floor"]["ours"]) * 1000,
            "max": max(got["floor"]["ours"]) * 1000,
            "unit": "ms",
            "baseline": pmed,
            "ratio": floor / pmed,
            "target": "informational",
            "ok": True,
            "note": "floor: `python -c` importing the console, the click root, the Ctx and "
            "subprocess, then ending as the console ends a verb (os._exit), paired with "
            "`python -c pass` in the same rounds; a review or a landing has what is left of its "
            "target above it for its own modules, its gits and its work",
        }
    )
    rows[0]["note"] = (
        f"git: {GIT_ROUNDS} rounds, each a new worker (`--command`, no sandbox) committing a "
        f"{GIT_FILES}-file change, ended; `looop review ID` (to a pipe) paired with `git log` + "
        "`git diff --stat` + `git diff` of main...branch by hand, `looop land ID --ff` with "
        "`git merge --ff-only` of the same change in a twin repository, in alternating order; "
        "baseline = the git by hand, median. " + str(rows[0]["note"])
    )
    return rows


def run() -> list[dict[str, object]]:
    # An installed wheel is byte-compiled once by pip; an editable checkout under
    # PYTHONDONTWRITEBYTECODE would recompile on every start, which no user pays.
    import looop
    from looop.home.clock import SystemClock
    from looop.sessions.client import kill, wait
    from looop.sessions.spawner import spawn

    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(Path(looop.__file__).parent)], check=True
    )
    looop_bin = str(Path(sys.executable).parent / "looop")
    base_cmd = [sys.executable, "-c", "pass"]
    with tempfile.TemporaryDirectory() as d:
        data = Path(d) / "data"
        data.mkdir()
        _seed(data, time.time())
        env = dict(os.environ, LOOOP_DATA_DIR=str(data))
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        spawn(data, "w1", ["cat"], cwd=data, env=env)
        try:
            ours: dict[int, list[float]] = {i: [] for i in range(len(VERBS))}
            base: dict[int, list[float]] = {i: [] for i in range(len(VERBS))}
            for _ in range(2):  # warm the page cache for both programs
                _time(base_cmd, env)
                for verb in VERBS:
                    _time([looop_bin, *verb], env)
            for r in range(ROUNDS):
                for i, verb in enumerate(VERBS):
                    pair = [(base[i], base_cmd), (ours[i], [looop_bin, *verb])]
                    for sink, cmd in pair if r % 2 else reversed(pair):
                        sink.append(_time(cmd, env))
        finally:
            kill(data, "w1")
            wait(data, "w1", 30, SystemClock())
        moves = _moves(looop_bin, Path(d))
        gits = _git_moves(looop_bin, Path(d))
    rows: list[dict[str, object]] = []
    for i, verb in enumerate(VERBS):
        med, bmed = statistics.median(ours[i]), statistics.median(base[i])
        ratio = med / bmed
        target = TARGETS.get(verb[0], TARGET)
        rows.append(
            {
                "name": f"looop {' '.join(verb[:2] if verb[0] == 'cost' else verb[:1])} cold",
                "value": med * 1000,
                "min": min(ours[i]) * 1000,
                "max": max(ours[i]) * 1000,
                "unit": "ms",
                "baseline": bmed * 1000,
                "ratio": ratio,
                "target": f"ratio <= {target}",
                "ok": ratio <= target,
            }
        )
    rows[0]["note"] = (
        f"cli: {ROUNDS} interleaved rounds per verb, each pairing the verb with `python -c "
        "pass` (same venv python) in alternating order; ratio = median / median. Each run is "
        "a new process of the installed console script, byte-compiled once first as pip does "
        "at install; tell/told/claim/unclaim run against a live worker (cat) and do their real "
        "writes every round; status and ls read a lived-in data dir (config, 900 events, a "
        "journal, a cost ledger with spend today, a decide ledger); send and key type into the "
        "worker (its screen and log grow every round), shot asks its supervisor for the screen, "
        "log reads its last 20 lines. The worker contract's verbs (claim, unclaim, tell, told, "
        "cost report) skip click (target 2); every verb a human types goes through click "
        "(target 5; --help, which lists the verbs from a static table, 3)"
    )
    return rows + _move_rows(moves) + _git_rows(gits)


if __name__ == "__main__":
    if sys.argv[1:] == ["git"]:  # only the review and land rows
        with tempfile.TemporaryDirectory() as d:
            for row in _git_rows(_git_moves(str(Path(sys.executable).parent / "looop"), Path(d))):
                print(row)
        raise SystemExit
    for row in run():
        print(row)
