"""cgroup.in_own_run: a caller in one of looop's own run groups has the host's limits; any
other cgroup (a limit set, a group elsewhere, a v1 controller) does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from looop.core.cgroup import in_own_run

HOST = "1:memory:/\n0::/\n"


def _mount(tmp_path: Path, *groups: str) -> str:
    """A fake cgroup v2 mount holding these group folders."""
    (tmp_path / "cgroup.controllers").write_text("")
    for g in groups:
        (tmp_path / g.lstrip("/")).mkdir(parents=True, exist_ok=True)
    return str(tmp_path)


def _caller(path: str, memory: str = "/") -> str:
    return f"1:memory:{memory}\n0::{path}\n"


def test_the_same_cgroups_are_the_same_world(tmp_path: Path) -> None:
    assert in_own_run(HOST, HOST, _mount(tmp_path))


def test_a_run_group_in_the_hosts_looop_folder_is_the_same_world(tmp_path: Path) -> None:
    base = _mount(tmp_path, "/looop/0123abcd-pulse")
    assert in_own_run(_caller("/looop/0123abcd-pulse"), HOST, base)


def test_a_host_that_escaped_to_the_folder_serves_the_runs_beside_it(tmp_path: Path) -> None:
    base = _mount(tmp_path, "/a/looop/x-w1")
    assert in_own_run(_caller("/a/looop/x-w1"), "1:memory:/\n0::/a/looop\n", base)


@pytest.mark.parametrize(
    "path",
    [
        "/other",  # a cgroup that is not looop's
        "/looop",  # the folder itself is no run
        "/looop/x-w1/deeper",  # below a run group: whatever made it may limit it
        "/looop/..",
        "/looop/../other",
        "/elsewhere/looop/x-w1",  # another cgroup's looop folder: that cgroup's limits
        "/looop/",
    ],
)
def test_any_other_v2_group_is_not(tmp_path: Path, path: str) -> None:
    base = _mount(tmp_path, "/looop/x-w1/deeper", "/other", "/elsewhere/looop/x-w1")
    assert not in_own_run(_caller(path), HOST, base)


@pytest.mark.parametrize(
    ("where", "limit", "value", "same"),
    [
        ("looop/x-w1", "memory.max", "max\n", True),
        ("looop/x-w1", "pids.max", "max\n", True),
        ("looop/x-w1", "cpu.max", "max 100000\n", True),
        ("looop/x-w1", "memory.max", "1048576\n", False),
        ("looop/x-w1", "pids.max", "64\n", False),
        ("looop/x-w1", "cpu.max", "50000 100000\n", False),
        ("looop", "memory.high", "1048576\n", False),  # the folder's limit binds its runs
        ("looop", "io.max", "8:0 rbps=1024\n", False),
    ],
)
def test_a_run_group_with_a_limit_set_is_not(
    tmp_path: Path, where: str, limit: str, value: str, same: bool
) -> None:
    base = _mount(tmp_path, "/looop/x-w1")
    (tmp_path / where / limit).write_text(value)
    assert in_own_run(_caller("/looop/x-w1"), HOST, base) is same


def test_another_v1_controller_or_line_count_is_not(tmp_path: Path) -> None:
    base = _mount(tmp_path, "/looop/x-w1")
    assert not in_own_run(_caller("/looop/x-w1", memory="/capped"), HOST, base)
    assert not in_own_run("0::/looop/x-w1\n", HOST, base)
    assert not in_own_run(_caller("/looop/x-w1"), HOST, str(tmp_path / "no-mount"))
    assert not in_own_run(None, HOST, base)
    assert in_own_run(None, None, base)


def test_a_v1_freezer_run_group_is_the_same_world(tmp_path: Path) -> None:
    (tmp_path / "freezer" / "looop" / "x-w1").mkdir(parents=True)
    (tmp_path / "freezer" / "cgroup.procs").write_text("")
    host = "2:freezer:/\n1:memory:/\n"
    assert in_own_run("2:freezer:/looop/x-w1\n1:memory:/\n", host, str(tmp_path))
    assert not in_own_run("2:freezer:/other\n1:memory:/\n", host, str(tmp_path))


@pytest.mark.parametrize(
    ("path", "host", "same"),
    [
        # the pulse in its pen, inside its session's group: judged where it lives
        ("/looop/0123abcd-pulse/looop-pen.42", HOST, True),
        # a pulse run from a shell, beside the host, in its pen right under that cgroup
        ("/looop-pen.42", HOST, True),
        ("/a/looop-pen.42", "1:memory:/\n0::/a\n", True),
        # a pen below anything else is that thing's
        ("/other/looop-pen.42", HOST, False),
        ("/looop/x-w1/deeper/looop-pen.42", HOST, False),
        ("/looop/looop-pen.42", HOST, False),  # the folder is no run
    ],
)
def test_a_caller_in_its_pen_is_judged_where_it_lives(
    tmp_path: Path, path: str, host: str, same: bool
) -> None:
    base = _mount(tmp_path, path, "/a/looop")
    assert in_own_run(_caller(path), host, base) is same


def test_a_pen_with_a_limit_set_is_not_the_same_world(tmp_path: Path) -> None:
    path = "/looop/0123abcd-pulse/looop-pen.42"
    base = _mount(tmp_path, path)
    (tmp_path / path.lstrip("/") / "pids.max").write_text("64\n")
    assert not in_own_run(_caller(path), HOST, base)
