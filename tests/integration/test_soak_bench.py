"""`make soak` tells the truth: a short soak passes every check, and a fault that did not
happen fails its check (issue 30, item 8)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import soak

REPO = Path(__file__).resolve().parents[2]
BEAT_S = 2  # the suite's soaks beat faster than `make soak` (5 s)

pytestmark = [
    pytest.mark.process,
    pytest.mark.skipif(
        os.geteuid() != 0, reason="the soak mounts a tmpfs (disk full, read-only data dir)"
    ),
]


@pytest.fixture
def faketime() -> None:
    """The clock fault steps every process of the home under Debian's libfaketime (its
    `faketime` holds the shared clock; a C compiler builds the soak's sleep shim): the run
    installs them as it installs its other real parts (tests/realcli/install.py)."""
    from tests.realcli.install import install_debian

    install_debian({"faketime": "faketime", "cc": "gcc"})


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_short_soak_injects_every_fault_and_passes_every_check(
    tmp_path: Path, faketime: None
) -> None:
    report = tmp_path / "SOAK.md"
    # 2 s beats: every fault and its bound are timed in beats, so each still waits out the
    # same number of beats as in `make soak`, in two fifths of the time
    env = {
        **os.environ,
        "SOAK_MINUTES": "1.5",
        "SOAK_BEAT_S": str(BEAT_S),
        "SOAK_REPORT": str(report),
    }
    env = {k: v for k, v in env.items() if not k.startswith("LOOOP_")}
    env["LOOOP_RUNTIME_DIR"] = os.environ["LOOOP_RUNTIME_DIR"]  # the run's own hosts
    r = subprocess.run(
        [sys.executable, str(REPO / "bench" / "soak.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=840,
        cwd=REPO,
    )
    text = report.read_text() if report.is_file() else ""
    rows = [ln for ln in text.splitlines() if ln.startswith("| ")]
    held = [ln for ln in rows if "| yes |" in ln]
    broke = [ln for ln in rows if "| NO |" in ln]
    # the broken rows first: their detail names the file and the error a reader needs
    assert r.returncode == 0, "\n".join(broke) + "\n" + r.stdout[-3000:] + r.stderr[-2000:]
    assert len(held) >= 30 and not broke, broke
    for name in soak.RECOVERY_S:  # every fault ran, and said what showed it happened
        row = next(ln for ln in rows if ln.startswith(f"| {name} |"))
        assert "NOT INJECTED" not in row, row


@pytest.fixture
def fast_beats(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process's soak harness at the suite's beat (bench/soak.py reads SOAK_BEAT_S once,
    at import)."""
    monkeypatch.setattr(soak, "BEAT_S", BEAT_S)
    monkeypatch.setattr(soak, "LOG_CHECK_S", 3.0 * BEAT_S)


@pytest.mark.timeout(300)
def test_a_fault_the_harness_did_not_inject_fails_its_check(fast_beats: None) -> None:
    s = soak.setup(1)
    try:
        assert s.looop("up", timeout=120).returncode == 0
        s.kill = lambda _pid, _sig: None  # the harness "kills" the pulse, and nothing happens
        pid = s.pulse_pid()
        fault = soak.fault_pulse(s)
        assert not fault.verified
        assert fault.note == f"pulse {pid} did not die"
        s.faults.append(fault)
        s.samples.append(s.sample())
        rows = {name: ok for name, ok, _ in soak.check(s, soak.end_state(s))}
        assert rows[f"fault: {fault.name} (<= {soak.RECOVERY_S[fault.name]} s)"] is False
        assert rows["every fault ran"] is False  # the other nine never did
    finally:
        soak.teardown(s)


def test_a_bad_beat_is_refused_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "SOAK_MINUTES": "1", "SOAK_BEAT_S": "0.5"}
    r = subprocess.run(
        [sys.executable, str(REPO / "bench" / "soak.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "SOAK_BEAT_S=0.5" in r.stderr and "whole seconds" in r.stderr
