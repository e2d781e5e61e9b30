"""Which process a filter started anew enters to take a running box's ports back
(sandbox/netns.py): one carrying the box's mark, inside another network than the filter's."""

from __future__ import annotations

import os

import pytest

from looop.sandbox import netns

pytestmark = pytest.mark.unit


def test_a_box_is_entered_by_a_process_of_its_own_network_only() -> None:
    me = os.getpid()
    lines = {me: b"bwrap\0--setenv\0HTTP_PROXY\0http://srt.abc%3D:tok@localhost:3128\0"}
    ours = netns.own_net()
    assert netns.box_pid("srt.abc%3D", lines, ours) is None  # in our network: not the box
    assert netns.box_pid("srt.abc%3D", lines, ours + 1) == me  # in another: the box's
    assert netns.box_pid("srt.other", lines, ours + 1) is None  # no process carries it
    assert netns.box_pid("srt.abc%3D", {2**22 + 7: lines[me]}, ours + 1) is None  # ended
