"""$LOOOP_PORT's leases read as a start reads them: the lease files there are, not a file
opened for every port of the range (1,000 by default) on every start."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from looop.home.config import Knobs
from looop.workers import ports

RANGE = Knobs({"worker_port_base": 24000, "worker_ports": 1000}, frozenset())


def _leased(data: Path, port: int, wid: str) -> None:
    ports.folder(data).mkdir(parents=True, exist_ok=True)
    (ports.folder(data) / str(port)).write_text(wid + "\n")


def test_the_leases_are_the_files_there_are(tmp_path: Path) -> None:
    _leased(tmp_path, 24003, "w1")
    _leased(tmp_path, 24007, "w2")
    (ports.folder(tmp_path) / "024001").write_text("w3\n")  # no port's own name
    (ports.folder(tmp_path) / "24009").write_text("\n")  # names no worker
    (ports.folder(tmp_path) / ".lock").write_text("")
    assert ports.leases(tmp_path) == {24003: "w1", 24007: "w2"}
    assert ports.leases(tmp_path / "nowhere") == {}


def test_a_start_reads_only_the_leases_there_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its last port again (the lease names it), others' live leases spared: the lease files
    are read once each, the other 997 ports of the range not at all."""
    _leased(tmp_path, 24002, "w1")
    _leased(tmp_path, 24000, "w2")
    read: list[int] = []
    real = ports.holder

    def counted(data: Path, port: int) -> str:
        read.append(port)
        return real(data, port)

    monkeypatch.setattr(ports, "holder", counted)
    monkeypatch.setattr(ports, "bindable", lambda port: True)
    assert ports.lease(tmp_path, "w1", {"w2"}, RANGE) == 24002
    assert sorted(read) == [24000, 24002]
    read.clear()
    assert ports.lease(tmp_path, "w3", {"w1", "w2"}, RANGE) == 24001
    assert sorted(read) == [24000, 24002]
    assert ports.holder(tmp_path, 24001) == "w3"


def test_a_fifo_in_a_leases_place_is_no_lease_and_hangs_nothing(tmp_path: Path) -> None:
    _leased(tmp_path, 24001, "w1")
    os.mkfifo(ports.folder(tmp_path) / "24000")  # nobody writes it: a plain open would wait
    assert ports.leases(tmp_path) == {24001: "w1"}
    assert ports.holder(tmp_path, 24000) == ""
