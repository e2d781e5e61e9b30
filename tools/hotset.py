"""Which of looop's modules the hot verbs load: the room that must stay import-light.

Each hot verb (the fast verbs of tests/unit/cli/test_fast_imports.py, `worker start`, `kill`,
`tick`, `up`) runs as `python -m looop …` in a fresh interpreter against a seeded data dir, and
every process it starts (the session host, each session's supervisor) records each module of
looop it imports through a finder installed by a `sitecustomize` this script writes; a process
that ends with `os._exit` or a signal is counted all the same. The beat that decides (it waits
seconds for an agent) and the pulse `up` starts (once a day) are measured but not counted; what
the far side of a remote worker runs per verb is (see FAR). `python tools/hotset.py` prints the
set, one module a line; `--by-verb` prints which run loads what.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "looop"
sys.path.insert(0, str(ROOT))

from tests.unit.cli.test_fast_imports import VERBS  # noqa: E402  (the guard's own list)

# The hook each process of a run loads: every import of a looop module is appended to a file
# named for the process, so nothing depends on how the process ends.
HOOK = """
import os, sys
_out = os.environ.get("HOTSET_OUT")


class _Recorder:
    # first on sys.meta_path: sees every module's first import, `importlib.import_module` too
    seen = {}

    def find_spec(self, name, path=None, target=None):
        if name.startswith("looop"):
            pid = os.getpid()  # a forked child (the pulse) is its own
            label = os.environ.get("HOTSET_LABEL", "?")
            with open(os.path.join(_out, f"{label}-{pid}"), "a") as fh:
                if pid not in self.seen:
                    self.seen[pid] = True
                    fh.write("argv " + "_".join(sys.argv[1:]) + "\\n")
                fh.write(name + "\\n")
        return None


if _out:
    sys.meta_path.insert(0, _Recorder())
"""

# The first beat of a new world asks the agent (seconds): its imports are not on the hot path,
# which is the beat that finds nothing changed.
DECIDES = "tick that decides"
PULSE = "the pulse up starts"
# Run after the fast verbs, in this order: each may need what the one before left.
EXTRA: list[tuple[str, list[str], dict[str, str]]] = [
    (DECIDES, ["tick"], {}),
    ("tick", ["tick"], {}),
    ("worker start", ["worker", "start", "w2", "hello", "--no-sandbox"], {}),
    ("kill", ["kill", "w2"], {}),
    # `looop init` turns the sandbox on where srt is installed: a user's usual start
    ("worker start (sandboxed)", ["worker", "start", "w3", "hello", "--sandbox"], {}),
    ("kill (sandboxed)", ["kill", "w3"], {}),
    ("up", ["up"], {}),
]


# What runs per verb away from this machine's CLI: a pod's shim and call-home (a worker's hot
# verbs in a pod), the satellite an SSH host runs for every `looop ls` (`looop satellite KEY
# ls`, a verb of cli/hosts), and the pty relay a sandboxed worker starts under. Each is
# measured by importing it in a fresh interpreter.
FAR = (
    "looop.cli.hosts",
    "looop.remote.callhome",
    "looop.remote.shim",
    "looop.remote.ssh.satellite",
    "looop.sandbox.ptyrelay",
)
_LOADED = "import sys, {0}; print(' '.join(m for m in sys.modules if m.startswith('looop')))"


def far() -> set[str]:
    out: set[str] = set()
    for mod in FAR:
        r = subprocess.run(
            [sys.executable, "-c", _LOADED.format(mod)],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        out.update(r.stdout.split())
    return out


def _seed(data: Path) -> None:
    from looop.home.paths import Paths
    from looop.seed import ensure_data_dir

    paths = Paths.at(data)
    ensure_data_dir(paths)
    noop = """printf '%s' '{"action":"noop","journal":"all quiet"}' > .decision.json"""
    cfg = {"tick_command": noop, "worker_command": "cat {{prompt_file}} -"}
    paths.config.write_text(json.dumps(cfg))


def _label(label: str) -> str:
    return label.replace(" ", "_").replace("/", "_")


def _run(label: str, argv: list[str], env: dict[str, str]) -> int:
    env = dict(env, HOTSET_LABEL=_label(label))
    r = subprocess.run(
        [sys.executable, "-m", "looop", *argv],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
    )
    if r.returncode != 0:
        print(f"hotset: `looop {' '.join(argv)}` exited {r.returncode}: {r.stderr.strip()[-300:]}")
    return r.returncode


def measure() -> dict[str, set[str]]:
    """label -> the looop modules the processes of that run imported."""
    from looop.home.clock import SystemClock
    from looop.sessions.client import kill, wait
    from looop.sessions.spawner import spawn

    with tempfile.TemporaryDirectory() as d:
        hook, out, data = Path(d) / "hook", Path(d) / "out", Path(d) / "data"
        for p in (hook, out, data):
            p.mkdir()
        (hook / "sitecustomize.py").write_text(HOOK)
        _seed(data)
        env = {
            "PATH": os.environ.get("PATH", "/bin"),
            "HOME": str(data),
            "LOOOP_DATA_DIR": str(data),
            "PYTHONPATH": str(hook),
            "HOTSET_OUT": str(out),
        }
        # the session host these start serves every session of the run, and records too
        host_env = {**os.environ, **env, "HOTSET_LABEL": "session host"}
        spawn(data, "w1", ["cat"], cwd=data, env=host_env)
        spawn(data, "done", ["true"], cwd=data, env=host_env)
        wait(data, "done", 30, SystemClock())
        try:
            for argv in VERBS:
                _run(" ".join(argv), argv, env)
            for label, argv, extra in EXTRA:
                _run(label, argv, {**env, **extra})
            time.sleep(3)  # the pulse `up` started beats once: let its first beat import
        finally:
            _run("down", ["down"], env)
            for sid in ("w1", "w2", "w3"):
                with contextlib.suppress(Exception):  # gone already is fine
                    kill(data, sid)
                    wait(data, sid, 30, SystemClock())
        found: dict[str, set[str]] = {}
        for f in out.iterdir():
            label = f.name.rsplit("-", 1)[0]
            words = f.read_text().split()
            mods = words[2:]  # after "argv" and the process's arguments
            if words[1].startswith("pulse"):
                label = PULSE  # the loop `up` starts: its own start is paid once a day
            found.setdefault(label, set()).update(mods)
    return found


def _real(mods: set[str]) -> set[str]:
    """Only names that are modules of the package (an import of `looop.x.name` names both)."""
    keep = set()
    for m in mods:
        rel = Path(*m.split(".")[1:]) if "." in m else Path()
        if (SRC / rel).with_suffix(".py").is_file() or (SRC / rel / "__init__.py").is_file():
            keep.add(m)
    return keep


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--by-verb", action="store_true")
    ap.add_argument(
        "--with-decide", action="store_true", help="count the deciding beat and the pulse too"
    )
    args = ap.parse_args()
    found = {k: _real(v) for k, v in measure().items()}
    found["far side"] = _real(far())
    if args.by_verb:
        for label in sorted(found):
            print(f"{label}: {len(found[label])}")
            print("  " + " ".join(sorted(found[label])))
        return 0
    skip = {"down"} | (set() if args.with_decide else {_label(DECIDES), PULSE})
    hot = set().union(*(v for k, v in found.items() if k not in skip))
    print("\n".join(sorted(hot)))
    print(f"# {len(hot)} modules", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
