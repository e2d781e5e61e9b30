"""Fixtures shared by the CLI-level integration tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data dir the in-process CLI uses: no LOOOP_* from the outside world."""
    d = tmp_path / "data"
    for k in list(os.environ):
        if k.startswith("LOOOP_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("LOOOP_DATA_DIR", str(d))
    monkeypatch.setenv("IS_SANDBOX", "1")
    return d
