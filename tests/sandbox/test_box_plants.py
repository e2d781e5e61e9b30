"""What a box can still write, turned against looop's own readers (the real srt and
bubblewrap): from inside, a sandboxed worker plants in every place it may write — its
workspace, TMPDIR and reports, its runner's state — a symlink to a folder outside, FIFOs
named like the files looop reads, a held lock, a 50 MB one-line file and 100,000 entries, and
aims the same at the data dir's contract folders. Then a beat, `status`, `ls`, a kill and
`down` run on the host: each ends in time, and nothing outside the box is followed into,
deleted or read."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from looop.home.paths import Paths
from tests.helpers import until
from tests.sandbox.test_sandboxed_worker import Box

pytestmark = pytest.mark.timeout(240)

WEEK_OLD = time.time() - 8 * 86400  # older than any sweep's age

PLANT = r"""
set -u
CANARY="$1"
for d in "$LOOOP_WORKSPACE" "$TMPDIR" "$LOOOP_REPORTS_DIR" "$HOME/.claude/projects/planted"; do
  mkdir -p "$d"
  ln -s "$CANARY" "$d/link-dir"
  ln -s "$CANARY/package.json" "$d/link.json"
  ln -s "$CANARY/package.json" "$d/link.jsonl"
  mkfifo "$d/fifo" "$d/fifo.json" "$d/fifo.jsonl" "$d/output.log"
  head -c 50000000 /dev/zero | tr '\0' 'x' > "$d/huge.jsonl"
done
for d in "$LOOOP_REPORTS_DIR" "$TMPDIR"; do
  mkdir "$d/many" && (cd "$d/many" && seq 1 100000 | xargs touch)
done
D="$LOOOP_DATA_DIR"
for f in claims tells/consumed asks answers reports sessions; do
  mkdir -p "$D/$f" 2>/dev/null && ln -s "$CANARY" "$D/$f/planted" 2>/dev/null
done
exec 9>"$LOOOP_WORKSPACE/.lock"
flock 9
touch "$LOOOP_WORKSPACE/planted"
exec sleep 600
"""


def _canary(home: Path) -> dict[Path, bytes]:
    """A project's files outside every box, week-old, as a sweep would find them."""
    canary = home / "canary"
    canary.mkdir()
    files = {canary / "package.json": b'{"name": "mine"}\n', canary / "old.json": b"{}\n"}
    for path, data in files.items():
        path.write_bytes(data)
        os.utime(path, (WEEK_OLD, WEEK_OLD))
    return files


def test_what_a_box_plants_where_it_writes_never_reaches_past_it(tmp_path: Path, srt: Path) -> None:
    box = Box(tmp_path, srt, "on")
    decider = tmp_path / "decider.sh"
    decider.write_text('echo \'{"action": "noop"}\' > "$LOOOP_DECISION"\n')
    runner = {"tick": f"bash {decider} {{{{prompt_file}}}}", "worker": "x {{prompt_file}}"}
    cfg = {
        "default": "claude",
        "runners": {"claude": runner},
        "sandbox": "on",
        "shell_policy": {"sandbox": "off"},
    }
    (box.data / "config.json").write_text(json.dumps(cfg))
    files = _canary(box.home)
    plant = box.home / "plant.sh"
    plant.write_text(PLANT)
    line = f"bash {plant} {box.home / 'canary'} # {{{{prompt_file}}}}"
    started = box.looop("worker", "start", "w1", "plant", "--command", line)
    assert started.returncode == 0, started.stderr
    room = Paths.at(box.data).rooms / "w1"
    assert until(lambda: (room / "work" / "planted").exists(), 150), box.looop("log", "w1").stdout

    # the host's readers, each in time (a FIFO or a held lock would hang one for ever)
    for args in (("tick", "--force"), ("status",), ("status", "--json"), ("ls", "-a")):
        begun = time.monotonic()
        done = box.looop(*args, timeout=60)
        took = time.monotonic() - begun
        assert took < 30, (args, took)
        assert "x" * 1000 not in done.stdout + done.stderr, args  # the huge line unread
        assert done.returncode in (0, 1), (args, done.stderr)  # an answer, not a crash
    killed = box.looop("kill", "w1", timeout=60)
    assert killed.returncode == 0, killed.stderr
    assert box.looop("down", timeout=60).returncode == 0

    # nothing outside the box was deleted, changed or followed into
    for path, data in files.items():
        assert path.read_bytes() == data, path
    assert sorted(p.name for p in (box.home / "canary").iterdir()) == ["old.json", "package.json"]
    # and nothing of the data dir is the box's: what it aimed there went nowhere
    planted = [p for p in box.data.rglob("planted") if p.is_symlink()]
    assert planted == []
    assert not any(p.is_fifo() for p in box.data.rglob("*"))
