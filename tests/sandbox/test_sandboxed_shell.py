"""run_shell (here through `looop run`, the same executor as a decision) inside the real srt
when `shell_policy.sandbox` is on: it writes reports/ but not $HOME, cannot read a planted
key or looop's config, reaches only its allowlisted domains; without srt nothing runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from looop.home.paths import Paths
from tests.sandbox.test_sandboxed_worker import Box, Server

pytestmark = pytest.mark.timeout(120)


def _box(tmp_path: Path, srt: Path, sandbox: object) -> Box:
    box = Box(tmp_path, srt, "off")
    cfg = (box.data / "config.json").read_text()
    (box.data / "config.json").write_text(
        cfg[:-1] + ', "shell_policy": {"sandbox": ' + json.dumps(sandbox) + "}}"
    )
    return box


def test_run_shell_inside_the_sandbox_holds_every_wall(tmp_path: Path, srt: Path) -> None:
    allowed, denied = Server("allowed-ok"), Server("denied-reached")
    try:
        box = _box(tmp_path, srt, {"domains": [f"127.0.0.1:{allowed.port}"]})
        ok = box.looop("run", "--", "sh", "-c", 'echo made > "$LOOOP_REPORTS_DIR/r.md"')
        assert ok.returncode == 0, ok.stderr
        assert (
            Paths.at(box.data).rooms / "+run_shell" / "reports" / "r.md"
        ).read_text() == "made\n"
        for cmd in (
            'echo pwned > "$HOME/outside.txt"',
            'grep -q SECRET "$HOME/.ssh/id_ed25519"',
            'grep -q SECRET "$LOOOP_CONFIG"',
            'grep -q SECRET "/proc/self/root$HOME/.ssh/id_ed25519"',
        ):
            done = box.looop("run", "--", "sh", "-c", cmd)
            assert done.returncode != 0, (cmd, done.stdout, done.stderr)
        # the data dir is an empty scratch folder inside: a write there never reaches the disk
        box.looop("run", "--", "sh", "-c", 'echo forged >> "$LOOOP_DATA_DIR/journal.md"')
        assert (box.home / "outside.txt").read_text() == "untouched\n"
        assert "forged" not in (box.data / "journal.md").read_text().splitlines()  # no such line
        got = box.looop("run", "--", "curl", "-s", "-m", "10", f"http://127.0.0.1:{allowed.port}/")
        assert got.returncode == 0 and allowed.hits == 1, got.stderr
        box.looop("run", "--", "curl", "-s", "-m", "10", f"http://127.0.0.1:{denied.port}/")
        assert denied.hits == 0
    finally:
        allowed.close()
        denied.close()


def test_run_shell_without_srt_runs_nothing_and_says_what_is_missing(
    tmp_path: Path, srt: Path
) -> None:
    box = _box(tmp_path, srt, "on")
    box.env["LOOOP_SRT"] = str(tmp_path / "no-srt")
    done = box.looop("run", "--", "touch", str(box.home / "ran"))
    assert done.returncode != 0
    assert "run_shell cannot run sandboxed: missing srt" in done.stderr
    assert '"shell_policy": {"sandbox": "off"}' in done.stderr
    assert not (box.home / "ran").exists()
