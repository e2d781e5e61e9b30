"""The agent CLIs looop knows (their profiles, runners/runnerprofile.py), in the order `looop init`
offers them. Every table that knows a CLI reads this tuple; a function that does takes it as a
parameter (default RUNNERS), so a test hands it one more profile without changing any module."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from looop.runners import claude, codex, gemini, opencode, pi
from looop.runners.runnerprofile import RunnerProfile

if TYPE_CHECKING:
    from collections.abc import Sequence

RUNNERS: tuple[RunnerProfile, ...] = (
    claude.PROFILE,
    codex.PROFILE,
    opencode.PROFILE,
    pi.PROFILE,
    gemini.PROFILE,
)
# the CLIs that say what they spend in their own output (a decide's stream, a worker's records)
COST_REPORTING = frozenset(p.name for p in RUNNERS if p.reports_cost)


def reporting_said(runners: tuple[RunnerProfile, ...] = RUNNERS) -> str:
    """Those CLIs as a message names them: "claude, codex or gemini"."""
    said = [p.name for p in runners if p.reports_cost]
    return ", ".join(said[:-1]) + " or " + said[-1]


def profile(name: str, runners: tuple[RunnerProfile, ...] = RUNNERS) -> RunnerProfile | None:
    """The profile of the CLI called `name` (a program's base name), or None (a custom runner)."""
    return next((p for p in runners if p.name == name), None)


def program(line: str) -> str:
    """The program a worker or runner line runs: its first word's base name, past `env` and
    NAME=value words."""
    for word in line.split():
        if word == "env" or ("=" in word and not word.startswith(("/", "."))):
            continue
        return os.path.basename(word.strip("'\""))
    return ""


def names(runners: tuple[RunnerProfile, ...] = RUNNERS) -> tuple[str, ...]:
    return tuple(p.name for p in runners)


def enter_gap(argv: Sequence[str], runners: tuple[RunnerProfile, ...] = RUNNERS) -> float:
    """How long a line typed into a session running `argv` waits after its echo for its
    Enter: the longest gap of a CLI named by any word of it (a sandbox's or a shell's line
    names the CLI inside it); 0 for every other program."""
    words = {os.path.basename(w) for arg in argv for w in arg.replace('"', " ").split()}
    return max((p.enter_gap_s for p in runners if p.name in words), default=0.0)
