"""Runner presets (the tick and worker command lines per agent CLI) and the prompt-file
placeholder they use (core/promptfile.py fills it in). Loaded only for a data dir with no
config (config.load_config) and by the rooms that start runners."""

from __future__ import annotations

from typing import TYPE_CHECKING

from looop.runners import RUNNERS
from looop.runners.runnerprofile import RunnerProfile

if TYPE_CHECKING:
    from typing import Any


# Runner presets, one per profile (runners/__init__.py), proven against the real CLIs
# (tests/realcli). The tick command gets the prompt on stdin unless it names {{prompt_file}}. A
# tick never splices the prompt into its command line ("$(cat {{prompt_file}})"): one argv
# string is capped at 128 KiB and the prompt may be 256 KiB.
def presets(runners: tuple[RunnerProfile, ...] = RUNNERS) -> dict[str, dict[str, str]]:
    return {p.name: dict(p.preset) for p in runners}


PRESETS = presets()
DEFAULT_RUNNER = RUNNERS[0].name  # the first `looop init` offers
PLACEHOLDER = "{{prompt_file}}"
SESSION_ID = "{{session_id}}"  # the worker's agent conversation id (workers/resume.py)


def default_config_obj(runners: tuple[RunnerProfile, ...] = RUNNERS) -> dict[str, Any]:
    """What a new data dir is seeded with: every preset, the default active."""
    return {"default": DEFAULT_RUNNER, "runners": presets(runners)}
