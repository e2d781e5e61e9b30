"""Fixtures shared by the CLI-level integration tests: the CLI gets its env and clock handed
to it, never through the process's own environment."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clocks import FixedClock
from tests.helpers import Cli, clean_env, environ_unchanged


@pytest.fixture(autouse=True)
def _environ_untouched(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test here leaves os.environ as it found it, checked before monkeypatch undoes
    anything (this fixture asks for monkeypatch, so it is torn down first)."""
    before = dict(os.environ)
    yield
    environ_unchanged(before, "this test")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """Where the CLI's data dir lives (not created: a fresh user's first run)."""
    return tmp_path / "data"


@pytest.fixture
def cli(
    data: Path,
    tmp_path: Path,
    clock: FixedClock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Cli:
    """`cli(*args, stdin=None, env_extra=None) -> (code, out, err)`: looop in this process,
    on `data`, with a clean env (HOME is the test's tmp dir) and the frozen test clock."""
    return Cli(capsys, monkeypatch, data, clean_env(tmp_path, data), clock)
