"""The filter's box records (sandbox/netboxes.py): a box's credentials open nothing once no
process carries them any more, but a box just wrapped (its line not yet run) is kept."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from looop.sandbox.netboxes import Boxes

pytestmark = pytest.mark.unit


def test_a_box_no_process_names_is_forgotten_after_the_grace(tmp_path: Path) -> None:
    boxes = Boxes(str(tmp_path / "boxes"))
    boxes.add("srt.live", "t1", ["a.example.com"], [], "srt.live%3D")
    boxes.add("srt.gone", "t2", ["b.example.com"], [], "srt.gone%3D")
    boxes.add("srt.new", "t3", ["c.example.com"], [], "srt.new%3D")
    now = os.stat(boxes._path("srt.new")).st_mtime
    for user in ("srt.live", "srt.gone"):  # wrapped an hour ago
        os.utime(boxes._path(user), (now - 3600, now - 3600))
    lines = ["bwrap --setenv HTTP_PROXY http://srt.live%3D:t1@localhost:3128 -- bash"]
    assert boxes.sweep(lines, now, grace_s=60) == 2
    assert boxes.record("srt.live") is not None  # its bubblewrap still runs
    assert boxes.record("srt.gone") is None  # nothing names it: gone
    assert boxes.record("srt.new") is not None  # just wrapped: its line may not run yet
    assert boxes.sweep([], now + 3600, grace_s=60) == 0  # later, with nothing running


def test_a_record_holds_what_the_filter_needs_and_nothing_lost_on_rewrite(tmp_path: Path) -> None:
    boxes = Boxes(str(tmp_path / "b"))
    boxes.add("u", "tok", ["x.example.com:443"], ["y.example.com"])
    assert boxes.record("u") == {
        "token_sha256": "tok",
        "allowed": ["x.example.com:443"],
        "denied": ["y.example.com"],
        "mark": "u",
    }
    boxes.add("u", "tok2", [], [])
    rec = boxes.record("u")
    assert rec is not None and rec["token_sha256"] == "tok2"
    assert [n for n in os.listdir(tmp_path / "b") if n.endswith(".tmp")] == []
    assert oct(os.stat(tmp_path / "b").st_mode & 0o777) == "0o700"
    boxes.remove("u")
    boxes.remove("u")  # twice: no error
    assert boxes.record("u") is None


def test_the_ports_a_box_handed_over_are_kept_for_a_filter_started_anew(tmp_path: Path) -> None:
    boxes = Boxes(str(tmp_path / "boxes"))
    boxes.add("srt.a", "t1", ["a.example.com"], [], "srt.a%3D")
    boxes.add("srt.b", "t2", ["b.example.com"], [], "srt.b%3D")
    assert boxes.joins() == []  # none handed its ports over yet
    boxes.joined("srt.a", [3128, 1080])
    boxes.joined("srt.nobody", [3128])  # no such box: nothing is made up for it
    [rec] = boxes.joins()
    assert (rec["user"], rec["ports"], rec["mark"]) == ("srt.a", [3128, 1080], "srt.a%3D")
    assert boxes.record("srt.a") == {**rec}  # the rest of its record as it was
    assert rec["token_sha256"] == "t1" and rec["allowed"] == ["a.example.com"]
    assert sorted(os.listdir(tmp_path / "boxes")) == sorted(
        os.path.basename(boxes._path(u)) for u in ("srt.a", "srt.b")
    )  # written in place, no temporary left
    boxes.remove("srt.a")
    assert boxes.joins() == []


def test_a_running_box_outlives_its_folder_and_gets_its_record_back(tmp_path: Path) -> None:
    """The runtime dir emptied under the filter (a tmp cleaner): the boxes it knows keep their
    records, written back at its next sweep while a process names them; one nothing names
    any more is forgotten all the same."""
    writer, filt = Boxes(str(tmp_path / "boxes")), Boxes(str(tmp_path / "boxes"))
    writer.add("srt.live", "t1", ["a.example.com"], [], "srt.live%3D", "w1")
    writer.add("srt.gone", "t2", ["b.example.com"], [], "srt.gone%3D")
    live = filt.record("srt.live")  # the filter read it when the box's connection came
    assert live is not None and filt.record("srt.gone") is not None
    filt.joined("srt.live", [3128])
    now = os.stat(filt._path("srt.live")).st_mtime
    shutil.rmtree(tmp_path / "boxes")
    assert filt.record("srt.live") == {**live, "user": "srt.live", "ports": [3128]}
    assert filt.speaking("w1")
    lines = ["bwrap --setenv HTTP_PROXY http://srt.live%3D:t1@localhost:3128 -- bash"]
    assert filt.sweep(lines, now + 3600, grace_s=60) == 1
    assert Boxes(str(tmp_path / "boxes")).joins() == [filt.record("srt.live")]  # back on disk
    assert oct(os.stat(tmp_path / "boxes").st_mode & 0o777) == "0o700"
    assert filt.record("srt.gone") is None and not os.path.exists(filt._path("srt.gone"))
    assert filt.sweep([], now + 7200, grace_s=60) == 0
    assert filt.record("srt.live") is None and not filt.speaking("w1")
