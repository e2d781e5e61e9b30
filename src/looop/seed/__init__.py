"""Starter data: seeded once, into a NEW data dir only."""

from __future__ import annotations

import os
from pathlib import Path

from looop.core import provenance
from looop.home import jsonio, store
from looop.home.errors import LooopError
from looop.home.paths import Paths
from looop.runners.presets import default_config_obj

_HERE = Path(os.path.abspath(__file__)).parent  # looop/seed/, found as verbs/console.py finds looop

# Seeded files, relative to the data dir, with their modes.
_STARTER = (
    ("PLAYBOOK.md", "PLAYBOOK.md", 0o644),
    ("goals/setup.md", "goals/setup.md", 0o644),
    ("goals/playbook-daily.md", "goals/playbook-daily.md", 0o644),
    ("sensors/today.sh", "sensors/today.sh", 0o755),
    ("gitignore", ".gitignore", 0o644),
)


def seed_text(name: str) -> str:
    """A packaged seed file (also the constitution and the manual)."""
    return package_text("data", name)


def package_text(*parts: str) -> str:
    """A file of this package, by its path's parts under looop/seed/."""
    # Read beside this module's source: looop is always installed from a directory, never a
    # zip (verbs/console.py finds the package the same way), so importlib.resources (~15 ms of
    # zipfile, lzma, bz2) would buy nothing.
    return _HERE.joinpath(*parts).read_text(encoding="utf-8")


# What readers may create before anything is seeded (`looop status` takes a lock in .lock/,
# a crashed verb leaves crash/; a worker of a data dir removed under it writes its end in
# sessions/): a data dir holding only these is still new.
_SCRATCH = frozenset({".lock", "crash", "sessions"})


def _is_new(data: Path) -> bool:
    try:
        return all(p.name in _SCRATCH for p in data.iterdir())
    except FileNotFoundError:
        return True


def ensure_data_dir(paths: Paths, seed: bool = True) -> bool:
    """Create the layout; seed starter files only when the data dir is new. True if seeded.
    seed=False (a running pulse's beat): a new data dir is refused, never seeded — the pulse
    would beat on a default config nobody wrote."""
    try:
        new = _is_new(paths.data)
        if new and not seed:
            raise LooopError(
                f"data dir {paths.data} is gone or empty under the running pulse — "
                "`looop up` starts a pulse on it"
            )
        paths.data.mkdir(parents=True, exist_ok=True, mode=0o700)
        if new:
            os.chmod(paths.data, 0o700)
        for d in (
            paths.goals,
            paths.goals_archive,
            paths.sensors,
            paths.snapshots,
            paths.runs,
            paths.claims,
            paths.reports,
            paths.prompts,
        ):
            d.mkdir(parents=True, exist_ok=True)
        if not new:
            return False
        for src, dst, mode in _STARTER:
            target = paths.data / dst
            if not target.exists():
                store.atomic_write(target, seed_text(src), mode=mode)
                if dst.startswith("sensors/"):  # a starter sensor is the human's own
                    name = dst[len("sensors/") : -len(".sh")]
                    text = store.encode(seed_text(src))
                    provenance.write(paths, provenance.SENSOR, name, text, provenance.HUMAN)
        if not paths.config.exists():
            store.atomic_write(paths.config, jsonio.dumps(default_config_obj(), indent=2) + "\n")
        return True
    except OSError as e:
        where = e.filename or paths.data
        raise LooopError(
            f"data dir {paths.data} is not usable ({e.strerror} on {where}); "
            "fix its permissions or set LOOOP_DATA_DIR"
        ) from e


SETUP_ASK = "setup-1"
_SETUP_PROMPT = (
    "First-run setup: looop runs on its starter PLAYBOOK. Answer this (any word) when you are "
    "ready: the setup worker interviews you about your work, sources, repositories and "
    "guardrails, then writes your PLAYBOOK, goals and sensors (goals/setup.md)."
)


def seed_setup_ask(paths: Paths, now: float) -> bool:
    """The setup ask v1.0 seeds, so a client blocked on `looop wait --only-asks` wakes on a
    fresh home. Only while the setup goal is open and no setup ask was ever made (re-running
    `init` asks nothing twice). True if it was written."""
    if not (paths.goals / "setup.md").is_file():
        return False
    for d in (paths.asks, paths.asks / "archive", paths.answers):
        if d.is_dir() and any(d.glob("setup-*.json")):
            return False
    rec = {
        "v": 1,
        "id": SETUP_ASK,
        "worker": "setup",
        "prompt": _SETUP_PROMPT,
        "reference": "goals/setup.md",
        "options": [],
        "ts": int(now),
    }
    paths.asks.mkdir(parents=True, exist_ok=True)
    # taken only if free, whole or not at all, as every ask is
    return store.create_new(paths.asks / f"{SETUP_ASK}.json", jsonio.canonical(rec) + "\n")
