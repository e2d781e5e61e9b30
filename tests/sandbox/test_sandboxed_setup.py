"""A sandboxed repo worker's setup (the real srt, bubblewrap and git): it runs inside the
worker's own walls — it writes the worktree, never the user's checkout or home, reads no key
— and its output is the first thing in the worker's log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from looop.home.paths import Paths
from tests.sandbox.test_sandboxed_worker import SECRET, Box
from tests.sandbox.test_sandboxed_worktree import git

pytestmark = pytest.mark.timeout(120)

# what a package's install script planted in the branch could try
SETUP = (
    "echo made > made.txt; "
    'echo pwned >> "$MAIN/README" && echo main-written; '
    'echo pwned >> "$HOME/outside.txt" && echo home-written; '
    'cat "$HOME/.ssh/id_ed25519" || echo key-unread'
)


def test_a_sandboxed_workers_setup_runs_inside_its_walls(tmp_path: Path, srt: Path) -> None:
    box = Box(tmp_path, srt, "on")
    main = tmp_path / "main repo"
    main.mkdir()
    git(main, "init", "-q", "-b", "main")
    git(main, "config", "user.name", "Test")
    git(main, "config", "user.email", "test@example.invalid")
    (main / "README").write_text("hello\n")
    git(main, "add", "README")
    git(main, "commit", "-qm", "start")
    config = json.loads((box.data / "config.json").read_text())
    config["worktree"] = {"setup": {str(main): SETUP}}
    (box.data / "config.json").write_text(json.dumps(config))
    box.env["MAIN"] = str(main)
    box.start("w1", 'cat made.txt > "$LOOOP_REPORTS_DIR/seen"\n', "--repo", str(main))
    assert box.wait("w1") == 0, box.looop("log", "w1").stdout
    assert (box.room("w1") / "reports" / "seen").read_text() == "made\n"
    log = (Paths.at(box.data).sessions / "w1" / "output.log").read_text()
    said = log.split("\n", 1)[1]  # after the line that names the command
    assert "looop: setup done" in said and "key-unread" in said, log
    assert "main-written" not in said and "home-written" not in said and SECRET not in said, log
    assert (main / "README").read_text() == "hello\n"
    assert (box.home / "outside.txt").read_text() == "untouched\n"
