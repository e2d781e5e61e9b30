"""`looop host install` takes minutes on a first run (wheels downloaded, copied, installed):
a person at a terminal hears each step as it begins; a script's stderr hears nothing."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from looop.cli.app import progress_line
from looop.remote.ssh import install as inst

pytestmark = pytest.mark.unit


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_each_step_of_an_install_is_said_before_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log: list[str] = []

    def remote(lk: Any, script: str, args: list[str], data: bytes | None = None) -> str:
        log.append("remote")
        return "3.11\n" if "version_info" in script else ""

    (tmp_path / "looop-1.whl").write_bytes(b"")
    monkeypatch.setattr(inst, "_remote", remote)
    monkeypatch.setattr(inst, "wheels", lambda *a: log.append("wheels") or tmp_path)
    monkeypatch.setattr(inst, "pip_wheel", lambda folder: tmp_path / "pip.whl")
    monkeypatch.setattr(inst, "_tar", lambda folder, wheel: b"")
    monkeypatch.setattr(inst, "sandbox_parts", lambda lk, srt: log.append("parts") or [])
    lk: Any = SimpleNamespace(host=SimpleNamespace(name="box"), data=tmp_path)
    lk.stop_master = lambda: None
    inst.install(lk, None, inst.Build("1", "x"), None, lambda step: log.append(f"say {step}"))
    kinds = [e.split()[0] for e in log]
    steps = ["say", "remote", "say", "wheels", "say", "remote", "say", "remote", "say"]
    assert kinds == [*steps, "parts"], log
    assert log[2].startswith("say gathering the wheels for Python 3.11"), log


def test_progress_is_said_on_a_terminal_and_not_to_a_script() -> None:
    tty, pipe = _Tty(), io.StringIO()
    progress_line(tty)("copying the wheels to box")
    progress_line(pipe)("copying the wheels to box")
    assert tty.getvalue() == "looop: copying the wheels to box…\n"
    assert pipe.getvalue() == ""
