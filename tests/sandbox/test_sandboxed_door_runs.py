"""A sandboxed worker's background verbs (`"$LOOOP_BIN" ask … &`) are runs of the home's own
`looop` started by its box's door in the network filter, outside the box, each in a session
of its own: `looop down` ends every one with the fleet (issue 51), checked the moment it
returns."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import wait_until
from tests.procwatch import by_argv, describe, kill_all, tagged
from tests.sandbox.test_sandboxed_worker import Box

pytestmark = pytest.mark.timeout(180)

ASKS = 3
ASKING = (
    "for i in " + " ".join(str(i) for i in range(ASKS)) + "; do\n"
    '  "$LOOOP_BIN" ask --prompt "boxed: go $i?" --options yes,no >/dev/null 2>&1 &\n'
    "done\nexec sleep 600\n"
)


def _left(data: Path) -> list[int]:
    return sorted(set(tagged("LOOOP_DATA_DIR", str(data))) | set(by_argv(str(data))))


def test_down_ends_the_door_runs_of_a_sandboxed_workers_background_asks(
    tmp_path: Path, srt: Path
) -> None:
    box = Box(tmp_path, srt, "on")
    asks = box.data / "asks"
    try:
        box.start("w1", ASKING)
        wait_until(
            lambda: asks.is_dir() and len(list(asks.glob("*.json"))) == ASKS,
            timeout=90,
            what="every ask on file (through the box's door)",
        )
        assert len(by_argv(str(box.data / ".contract"))) == ASKS  # the door's runs, waiting
        done = box.looop("down", timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        left = _left(box.data)
        assert not left, f"running after `looop down`: {describe(left)}"
    finally:
        kill_all(_left(box.data))
        box.looop("down")
