"""One home is one home in the sandbox's walls (the real srt and bubblewrap): the data dir
reached through a bind mount is the same folder, so its credentials and config stay hidden
under the bind's spelling as under the data dir's own, whichever spelling looop was given."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from looop.home.paths import Paths
from tests.helpers import clean_env
from tests.sandbox.test_sandboxed_credentials import PROBE_HEAD, plant, reads, results
from tests.sandbox.test_sandboxed_worker import Box

pytestmark = pytest.mark.timeout(120)

SECRETS = (".lock/web-token", ".lock/worker-token-key", "config.json", "journal.md")


@contextlib.contextmanager
def bound(src: Path, dst: Path) -> Iterator[Path]:
    """`mount --bind src dst` for the test's life; skipped cleanly where it cannot be made."""
    if os.geteuid() != 0:
        pytest.skip("a bind mount needs root")
    dst.mkdir(exist_ok=True)
    made = subprocess.run(
        ["mount", "--bind", str(src), str(dst)], capture_output=True, text=True, timeout=30
    )
    if made.returncode != 0:
        pytest.skip(f"mount --bind is refused here: {made.stderr.strip()}")
    try:
        yield dst
    finally:
        subprocess.run(["umount", "-l", str(dst)], capture_output=True, timeout=30, check=False)
        dst.rmdir()


@pytest.mark.parametrize("given", ["data dir", "bind"])
def test_a_bind_mounted_data_dir_hides_its_secrets_under_both_spellings(
    tmp_path: Path, srt: Path, given: str
) -> None:
    box = Box(tmp_path, srt, "on")
    plant(box.data, SECRETS)
    with bound(box.data, tmp_path / "bind") as bind:
        if given == "bind":  # looop itself is told the bind's spelling
            box.env = clean_env(box.home, bind, LOOOP_SRT=str(srt))
        script = (
            PROBE_HEAD
            + reads(SECRETS, f'"{box.data}"', "own")
            + reads(SECRETS, f'"{bind}"', "bind")
            + 't brief grep -q "WORKER CONTRACT" "$D/prompts/w1.md"\n'
            + 'echo end=1 >> "$r"\n'
        )
        (box.data / "prompts").mkdir(exist_ok=True)
        box.start("w1", script)
        assert box.wait("w1") == 0, box.looop("log", "w1").stdout
        got = results(Paths.at(box.data).rooms / "w1" / "work" / "results")
        assert got.pop("end") == "1" and got.pop("brief") == "ok", got
        assert got == dict.fromkeys(got, "no"), {k: v for k, v in got.items() if v != "no"}


def test_a_bind_of_a_folder_above_the_data_dir_shows_none_of_its_secrets(
    tmp_path: Path, srt: Path
) -> None:
    box = Box(tmp_path, srt, "on")
    plant(box.data, SECRETS)
    outer = tmp_path.parent / f"{tmp_path.name}-above"  # the test's whole folder, again
    with bound(tmp_path, outer) as bind:
        data = bind / "data"
        ssh = bind / "home" / ".ssh" / "id_ed25519"
        script = (
            PROBE_HEAD
            + reads(SECRETS, f'"{data}"', "above")
            + f't ssh grep -q SECRET "{ssh}"\n'
            + 'echo end=1 >> "$r"\n'
        )
        (box.data / "prompts").mkdir(exist_ok=True)
        box.start("w1", script)
        assert box.wait("w1") == 0, box.looop("log", "w1").stdout
        got = results(Paths.at(box.data).rooms / "w1" / "work" / "results")
        assert got.pop("end") == "1", got
        assert got == dict.fromkeys(got, "no"), {k: v for k, v in got.items() if v != "no"}
