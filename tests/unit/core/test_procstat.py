"""A process's /proc stat line, read past a name that holds brackets and spaces."""

from __future__ import annotations

import os

import pytest

from looop.core import procstat
from looop.core.procstat import stat_fields


def test_this_process_reads_as_running_under_its_parent() -> None:
    fields = stat_fields(os.getpid())
    assert fields is not None
    assert fields[0] in (b"R", b"S") and int(fields[1]) == os.getppid()
    assert int(fields[2]) == os.getpgrp()


def test_a_name_with_brackets_and_spaces_does_not_shift_the_fields(
    monkeypatch: pytest.MonkeyPatch, tmp_path: os.PathLike[str]
) -> None:
    line = b"42 (a) b (c) d) S 7 42 42 0 -1\n"
    real_open = open

    def fake_open(path: str, mode: str = "r", *a: object, **k: object) -> object:
        if path == "/proc/42/stat":
            stat = os.path.join(os.fspath(tmp_path), "stat")
            with real_open(stat, "wb") as f:
                f.write(line)
            return real_open(stat, mode)
        return real_open(path, mode, *a, **k)  # type: ignore[call-overload]

    monkeypatch.setattr(procstat, "open", fake_open, raising=False)
    assert stat_fields(42) == [b"S", b"7", b"42", b"42", b"0", b"-1"]


def test_a_process_that_is_gone_reads_as_none() -> None:
    assert stat_fields(2**22 + 12345) is None  # past the kernel's pid limit
