"""Sweeping a home's control sockets removes the dead ones and never knocks on a live one: a
knock wakes an idle supervisor (it accepts, reads nothing, closes), and every session host
that starts sweeps every home's sockets."""

from __future__ import annotations

import os
import select
import socket
from pathlib import Path

from looop.sessions import sweep as control


def _listener(path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.listen(4)
    return s


def test_a_sweep_removes_a_dead_socket_and_leaves_a_live_one_unknocked(tmp_path: Path) -> None:
    live = _listener(tmp_path / "live.sock")
    dead = _listener(tmp_path / "dead.sock")
    dead.close()  # its file stays, with nobody listening: a SIGKILLed supervisor's
    try:
        assert control._sweep_folder(str(tmp_path), None) == 1
        assert not (tmp_path / "dead.sock").exists() and (tmp_path / "live.sock").exists()
        # nothing waits on the live one's accept queue: it was never connected to
        assert select.select([live], [], [], 0)[0] == []
    finally:
        live.close()


def test_the_kernels_table_names_listening_sockets_only(tmp_path: Path) -> None:
    live = _listener(tmp_path / "live.sock")
    bound = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    bound.bind(str(tmp_path / "bound.sock"))  # bound, not listening
    try:
        paths = control.listening_paths()
        assert paths is not None
        assert str(tmp_path / "live.sock") in paths
        assert str(tmp_path / "bound.sock") not in paths
    finally:
        live.close()
        bound.close()


def test_without_the_kernels_table_each_socket_is_knocked_on(tmp_path: Path) -> None:
    assert control.listening_paths(os.fspath(tmp_path / "no-such-table")) is None
    live = _listener(tmp_path / "live.sock")
    dead = _listener(tmp_path / "dead.sock")
    dead.close()
    real = control.listening_paths
    try:
        control.listening_paths = lambda table="": None  # type: ignore[assignment]
        assert control._sweep_folder(str(tmp_path), None) == 1  # found by knocking
        assert (tmp_path / "live.sock").exists()
    finally:
        control.listening_paths = real  # type: ignore[assignment]
        live.close()
