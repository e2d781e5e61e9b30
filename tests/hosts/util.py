"""Run the installed looop as a user would, on a home data dir of the test's own."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.hosts.conftest import LOOOP


def home_env(data: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOOP_", "PYTEST"))}
    env.update(extra)
    env["LOOOP_DATA_DIR"] = str(data)
    # the run's own hosts, stopped with it: never the user's runtime dir
    env.setdefault("LOOOP_RUNTIME_DIR", os.environ["LOOOP_RUNTIME_DIR"])
    env["LOOOP_COLOR"] = "0"
    return env


def looop(
    data: Path,
    *args: str,
    timeout: float = 60,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LOOOP), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=home_env(data, **(env or {})),
        input=stdin,
        cwd=str(data.parent),
    )
