"""What a sandboxed worker's CLI would ask on its first screen, answered before it starts.

An answer given inside the box never persists (the CLI's config there is not the user's to
rewrite), so every new worker would ask again. Each CLI's profile says what it needs
(RunnerProfile.first_run, runners/__init__.py): the variables that make it ask nothing (told it
runs sandboxed, it trusts the folder for that session only and writes nothing), or why it
cannot start yet (an answer only the user gives, once, outside: an onboarding, an API key, a
way to log in, a first start's files), said in one line instead of a worker stuck on a
prompt."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping

from looop.runners import RUNNERS, profile
from looop.runners.runnerprofile import RunnerProfile
from looop.sandbox.srt import SandboxError


def _command(line: str) -> list[str]:
    """The line's words from its program on (past `env A=B`); none when it cannot be split."""
    try:
        words = shlex.split(line)
    except ValueError:
        return []
    while words and (words[0] == "env" or "=" in words[0]):
        words = words[1:]
    return words


def box_env(
    line: str, env: Mapping[str, str], runners: tuple[RunnerProfile, ...] = RUNNERS
) -> dict[str, str]:
    """The variables a sandboxed worker running `line` starts with so its CLI asks nothing;
    raises SandboxError (one line: what to run once) when its CLI's first run has questions
    only the user answers and they are not answered yet. Another program gets nothing."""
    words = _command(line)
    p = profile(os.path.basename(words[0]) if words else "", runners)
    if p is None or p.first_run is None:
        return {}
    add, why = p.first_run(env, words)
    if why:
        raise SandboxError(why)
    return add
