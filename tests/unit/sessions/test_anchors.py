"""The hosts' abstract names (home/anchors.py): one holder per name, found by its listener,
named apart per runtime dir, never a file a cleaner could remove."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from looop.home.anchors import anchor, hold, listening, shown
from looop.home.peers import holder
from looop.sessions.hostnames import host_socket


def test_a_guard_is_held_once_and_freed_with_its_socket(tmp_path: Path) -> None:
    name = anchor(str(tmp_path), f"host-{os.urandom(6).hex()}.lock")
    first = hold(name)
    assert first is not None
    assert hold(name) is None  # a second host of the same key: taken
    os.close(first)
    again = hold(name)  # the kernel freed it: a host that died leaves nothing behind
    assert again is not None
    os.close(again)


def test_a_listener_is_found_by_its_pid_and_its_prefix(tmp_path: Path) -> None:
    base = str(tmp_path)
    name = anchor(base, f"beat-{os.urandom(6).hex()}")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(name)
        assert holder(name) is None  # bound, not listening: nobody to ask
        s.listen(4)
        assert holder(name) == os.getpid()
        assert name in listening(base, "beat-")
        assert name not in listening(base, "host-")
        assert name not in listening(str(tmp_path / "other"), "beat-")
    assert holder(name) is None
    assert name not in listening(base, "beat-")


def test_names_differ_per_runtime_dir_and_are_no_files(tmp_path: Path) -> None:
    a, b = host_socket("k", str(tmp_path / "a")), host_socket("k", str(tmp_path / "b"))
    assert a != b and a.startswith("\0") and b.startswith("\0")
    assert f"-{os.geteuid()}-" in a
    assert shown(a) == "@" + a[1:] and "\0" not in shown(a)
    # a runtime dir too long for a socket path still names a host: the name is a hash
    deep = "/" + "d" * 300
    assert len(host_socket("k" * 16, deep).encode()) < 108
