"""Where no cgroup can be made, every bound asked for is named as not enforced (what
`looop doctor` says); a bound of 0 is never asked for."""

from __future__ import annotations

from pathlib import Path

from looop.core import limits


def test_without_a_cgroup_mount_every_bound_asked_for_is_named(tmp_path: Path) -> None:
    assert limits.enforceable(50, 1 << 20, str(tmp_path)) == ["pids", "memory"]
    assert limits.enforceable(0, 1 << 20, str(tmp_path)) == ["memory"]
    assert limits.enforceable(0, 0, str(tmp_path)) == []
