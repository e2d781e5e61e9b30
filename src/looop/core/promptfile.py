"""A runner's command line with the prompt file's path in place of {{prompt_file}} (and the
decider's answer file's in place of {{decision_file}})."""

from __future__ import annotations

import shlex
from pathlib import Path

from looop.runners.presets import PLACEHOLDER

DECISION_PLACEHOLDER = "{{decision_file}}"


def substitute_prompt_file(template: str, prompt_path: Path) -> str:
    """Replace {{prompt_file}} with a shell-quoted path, without double-quoting a quoted one."""
    return substitute_path(template, PLACEHOLDER, prompt_path)


def substitute_path(template: str, placeholder: str, path: Path) -> str:
    """Replace `placeholder` with a shell-quoted path, without double-quoting a quoted one."""
    q = shlex.quote(str(path))
    for quoted in (f'"{placeholder}"', f"'{placeholder}'"):
        template = template.replace(quoted, q)
    return template.replace(placeholder, q)
