"""A pod worker's screen, judged by the beat (remote/kube/podlook.py) from its log as the API
gives it: recorded screens of the real claude decide the verdict; an idle box counts only
once a later beat finds the log unchanged past the idle floor; an unchanged log draws no
screen; a listing reads the kept verdict and calls no API; a read that fails keeps it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from looop.remote.kube import podlook
from looop.sessions.state import SessionError
from looop.views.needsinput import IDLE_QUIET_S
from tests.clocks import StillClock

SCREENS = Path(__file__).resolve().parents[1] / "workers" / "screens"


class Pods:
    """A namespace's pods as HostedKube reads them: each worker's log; counts the calls."""

    def __init__(self) -> None:
        self.logs: dict[str, bytes] = {}
        self.reads = 0
        self.sizes = 0
        self.down = False

    def screen_bytes(self, sid: str) -> bytes:
        self.reads += 1
        if self.down:
            raise SessionError("the API is out of reach")
        return self.logs[sid]

    def _size(self, sid: str) -> tuple[int, int]:
        self.sizes += 1
        return 120, 40


def _screen(name: str) -> bytes:
    # a recorded plain screen, drawn on a cleared terminal as a TUI repaints it
    return b"\x1b[2J\x1b[H" + (SCREENS / f"claude-{name}.txt").read_bytes().replace(b"\n", b"\r\n")


def _rows() -> list[dict[str, Any]]:
    return [{"id": "pw", "host": "k1", "alive": True, "health": "busy", "needs_input": None}]


def _beat(data: Path, pods: Pods, clock: StillClock) -> dict[str, Any]:
    rows = _rows()
    podlook.look(data, rows, {"k1": pods}, clock)
    return rows[0]


def _listed(data: Path, clock: StillClock) -> dict[str, Any]:
    rows = _rows()
    podlook.kept(data, rows, clock)
    return rows[0]


def test_an_approval_prompt_is_needs_input_and_a_listing_reads_it_without_the_api(
    tmp_path: Path,
) -> None:
    pods, clock = Pods(), StillClock()
    pods.logs["pw"] = _screen("approval")
    assert _listed(tmp_path, clock)["health"] == "busy"  # no beat yet: nothing judged
    row = _beat(tmp_path, pods, clock)
    assert row["health"] == "needs-input" and row["needs_input"].startswith("approval"), row
    reads = pods.reads
    listed = _listed(tmp_path, clock)
    assert (listed["health"], listed["needs_input"]) == (row["health"], row["needs_input"])
    assert pods.reads == reads  # a listing calls no API
    drawn = pods.sizes
    assert _beat(tmp_path, pods, clock)["needs_input"] == row["needs_input"]
    assert pods.sizes == drawn  # the same log: its verdict stands, no screen drawn
    pods.down = True
    assert _beat(tmp_path, pods, clock)["health"] == "needs-input"  # out of reach: it stands
    pods.down = False
    pods.logs["pw"] += _screen("busy")
    row = _beat(tmp_path, pods, clock)
    assert (row["health"], row["needs_input"]) == ("busy", None)
    assert _listed(tmp_path, clock)["health"] == "busy"


def test_an_idle_box_counts_once_a_later_beat_finds_the_log_unchanged(tmp_path: Path) -> None:
    pods, clock = Pods(), StillClock()
    pods.logs["pw"] = _screen("idle")
    assert _beat(tmp_path, pods, clock)["health"] == "busy"  # just drawn: maybe a step between
    clock.advance(IDLE_QUIET_S / 2)
    assert _beat(tmp_path, pods, clock)["health"] == "busy"
    clock.advance(IDLE_QUIET_S)
    row = _beat(tmp_path, pods, clock)
    assert row["health"] == "needs-input" and row["needs_input"].startswith("idle"), row
    assert _listed(tmp_path, clock)["health"] == "needs-input"


def test_an_ended_pod_worker_leaves_no_tail_behind(tmp_path: Path) -> None:
    pods, clock = Pods(), StillClock()
    pods.logs["pw"] = _screen("approval")
    _beat(tmp_path, pods, clock)
    kept = tmp_path / "hosts" / "podlook" / "pw"
    assert kept.is_dir()
    podlook.look(tmp_path, [{**_rows()[0], "alive": False, "health": "dead"}], {"k1": pods}, clock)
    assert not kept.exists()
