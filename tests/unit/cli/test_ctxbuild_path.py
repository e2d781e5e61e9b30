"""ctxbuild finds looop on PATH as shutil.which does (without importing shutil)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from looop.cli.app import _on_path


@pytest.mark.unit
def test_a_name_on_path_is_found_where_shutil_finds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second, a_dir = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for d in (first, second, a_dir):
        d.mkdir()
    (first / "tool").write_text("")  # not executable: passed over
    (second / "tool").write_text("#!/bin/sh\n")
    (second / "tool").chmod(0o755)
    (a_dir / "tool").mkdir()  # a directory is no program
    for path in (
        os.pathsep.join(map(str, (first, a_dir, second))),
        os.pathsep.join(map(str, (first, a_dir))),
        "",
    ):
        monkeypatch.setenv("PATH", path)
        assert _on_path("tool") == shutil.which("tool")
    monkeypatch.setenv("PATH", os.pathsep.join(map(str, (first, second, second))))
    assert _on_path("tool") == shutil.which("tool") == str(second / "tool")
