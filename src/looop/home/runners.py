"""The agent CLIs looop knows (their profiles, home/runnerprofile.py), in the order `looop init`
offers them. Every table that knows a CLI reads this tuple; a function that does takes it as a
parameter (default RUNNERS), so a test hands it one more profile without changing any module."""

from __future__ import annotations

from looop.home import claude, codex, gemini, opencode, pi
from looop.home.runnerprofile import RunnerProfile

RUNNERS: tuple[RunnerProfile, ...] = (
    claude.PROFILE,
    codex.PROFILE,
    opencode.PROFILE,
    pi.PROFILE,
    gemini.PROFILE,
)


def profile(name: str, runners: tuple[RunnerProfile, ...] = RUNNERS) -> RunnerProfile | None:
    """The profile of the CLI called `name` (a program's base name), or None (a custom runner)."""
    for p in runners:
        if p.name == name:
            return p
    return None


def names(runners: tuple[RunnerProfile, ...] = RUNNERS) -> tuple[str, ...]:
    return tuple(p.name for p in runners)
