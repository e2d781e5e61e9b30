"""store.read_regular with a limit: the bytes a caller gets, and what a read costs in memory.
A pulse reads small state files with a large limit every beat; a read that allocated the
limit up front stepped the pulse's resident memory up for good (glibc kept the heap)."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import pytest

from looop.home import store

pytestmark = pytest.mark.unit

BIG = 16 * 1024 * 1024


@pytest.mark.parametrize("size", [0, 1, 300, 4096, 70_000])
def test_a_file_under_the_limit_is_read_whole(tmp_path: Path, size: int) -> None:
    p = tmp_path / "f"
    body = bytes(i % 251 for i in range(size))
    p.write_bytes(body)
    assert store.read_regular(p, BIG) == body


@pytest.mark.parametrize("limit", [0, 1, 99, 100, 101])
def test_a_file_over_the_limit_gives_limit_plus_one_bytes(tmp_path: Path, limit: int) -> None:
    """Callers tell "too big" by getting one byte more than the limit."""
    p = tmp_path / "f"
    p.write_bytes(b"x" * 100)
    assert len(store.read_regular(p, limit)) == min(100, limit + 1)


def test_a_small_read_does_not_allocate_the_limit(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_bytes(b'{"v":1}')
    tracemalloc.start()
    try:
        store.read_regular(p, BIG)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 256 * 1024, f"reading 7 bytes peaked at {peak} bytes"


def test_a_file_that_grows_while_read_is_read_to_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bytes appended after the size was taken still come, up to the limit."""
    p = tmp_path / "f"
    p.write_bytes(b"a" * 10)
    real = os.fstat

    def fstat_then_grow(fd: int) -> os.stat_result:
        st = real(fd)
        with open(p, "ab") as w:
            w.write(b"b" * 50)
        return st

    monkeypatch.setattr(os, "fstat", fstat_then_grow)
    got = store.read_regular(p, 1000)
    monkeypatch.undo()
    assert len(got) > 60 and got == p.read_bytes()
    assert store.read_regular(p, 30) == p.read_bytes()[:31]
