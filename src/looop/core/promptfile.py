"""A runner's command line with the prompt file's path in place of {{prompt_file}}."""

from __future__ import annotations

import shlex
from pathlib import Path

from looop.home.presets import PLACEHOLDER


def substitute_prompt_file(template: str, prompt_path: Path) -> str:
    """Replace {{prompt_file}} with a shell-quoted path, without double-quoting a quoted one."""
    q = shlex.quote(str(prompt_path))
    for quoted in (f'"{PLACEHOLDER}"', f"'{PLACEHOLDER}'"):
        template = template.replace(quoted, q)
    return template.replace(PLACEHOLDER, q)
