"""A worker's `--verify` with `--host`: the post-condition runs on the host, in the worker's
checkout, once the home has seen the worker over; its result (exit, output tail) comes home
to where a local worker's shows: `ls` and sys-sessions. A host out of reach leaves it
pending, and it runs once: not twice when the link drops mid-run and comes back."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.hosts.conftest import LOOOP, Home, Host
from tests.hosts.repos import host_repo
from tests.hosts.util import home_env, looop

CHECK = 'test -f made.txt && echo "found-it on $(git branch --show-current) as $(id -un)"'


def _host(home: Home, name: str) -> Host:
    return next(h for h in home.lab.hosts if h.name == name)


def _rows(d: Path) -> dict[str, dict[str, object]]:
    return {str(r["id"]): r for r in json.loads(looop(d, "ls", "-a", "--json").stdout)}


def _tick(d: Path) -> None:
    # the beat's decide has no runner to call here and fails: its housekeeping ran first
    looop(d, "tick", timeout=240)


def _over(d: Path, *wids: str) -> None:
    """Each worker has ended on its host and the home has seen it (the record says over)."""
    for wid in wids:
        assert looop(d, "wait", wid, "--timeout", "30s").returncode is not None
    end = time.monotonic() + 30
    while time.monotonic() < end:
        rows = _rows(d)
        if all(not rows[w]["alive"] for w in wids):
            return
        time.sleep(0.2)
    raise AssertionError(f"not over: {wids}")


def _verify(d: Path, wid: str) -> dict[str, object] | None:
    f = d / "verify" / f"{wid}.json"
    return json.loads(f.read_text()) if f.exists() else None


def _count(h: Host, name: str) -> int:
    f = h.home / name
    return len(f.read_text().splitlines()) if f.exists() else 0


@pytest.mark.timeout(240)
def test_verify_runs_on_the_host_in_the_checkout_and_its_result_comes_home(home: Home) -> None:
    d = home.data
    h3 = _host(home, "h3")
    repo = host_repo(h3, "verified")
    good = looop(
        d, "worker", "start", "vp1", "x", "--host", "h3", "--repo", str(repo),
        "--command", "bash -c 'echo made > made.txt' # {{prompt_file}}",
        "--verify", CHECK,
    )  # fmt: skip
    assert good.returncode == 0, good.stderr
    bad = looop(
        d, "worker", "start", "vf1", "x", "--host", "h3", "--command", "true # {{prompt_file}}",
        "--verify", "echo not-there >&2; exit 3",
    )  # fmt: skip
    assert bad.returncode == 0, bad.stderr
    _over(d, "vp1", "vf1")
    assert _verify(d, "vp1") is None  # nothing runs before a beat
    _tick(d)
    ok, fail = _verify(d, "vp1"), _verify(d, "vf1")
    assert ok is not None and fail is not None
    assert ok["pass"] is True and ok["exit_code"] == 0 and ok["host"] == "h3", ok
    assert f"found-it on looop/vp1 as {h3.user}" in str(ok["output"]), ok
    assert fail["pass"] is False and fail["exit_code"] == 3 and "not-there" in str(fail["output"])
    rows = _rows(d)
    assert rows["vp1"]["verify"] == "pass" and rows["vf1"]["verify"] == "fail", rows
    assert "found-it" in str(rows["vp1"]["verify_output"])
    table = looop(d, "ls", "-a").stdout
    line = next(ln for ln in table.splitlines() if ln.startswith("vf1"))
    assert "fail" in line, table
    # the beat's fleet reading (sys-sessions) carries them as a local worker's
    snap = json.loads((d / "snapshots" / "sys-sessions.json").read_text())
    text = json.dumps(snap)
    assert '"verify": "pass"' in text and '"verify": "fail"' in text, text[:2000]
    assert '"branch": "looop/vp1"' in text, text[:2000]  # its checkout's branch, from home


@pytest.mark.timeout(300)
def test_a_verify_waits_for_a_cut_host_and_runs_once(home: Home) -> None:
    d = home.data
    h3 = _host(home, "h3")
    (h3.home / "vcount-vc1").unlink(missing_ok=True)
    start = looop(
        d, "worker", "start", "vc1", "x", "--host", "h3", "--command", "true # {{prompt_file}}",
        "--verify", "echo ran >> ~/vcount-vc1; echo checked",
    )  # fmt: skip
    assert start.returncode == 0, start.stderr
    _over(d, "vc1")
    h3.cut()
    try:
        _tick(d)  # the host does not answer: the verify waits, nothing is recorded
        assert _verify(d, "vc1") is None
        assert _count(h3, "vcount-vc1") == 0
    finally:
        h3.restore()
    _tick(d)
    got = _verify(d, "vc1")
    assert got is not None and got["pass"] is True and "checked" in str(got["output"]), got
    _tick(d)
    assert _count(h3, "vcount-vc1") == 1  # once, not once per beat
    assert _rows(d)["vc1"]["verify"] == "pass"


@pytest.mark.timeout(300)
def test_a_link_cut_mid_verify_never_runs_it_twice(home: Home) -> None:
    d = home.data
    h3 = _host(home, "h3")
    (h3.home / "vcount-vc2").unlink(missing_ok=True)
    start = looop(
        d, "worker", "start", "vc2", "x", "--host", "h3", "--command", "true # {{prompt_file}}",
        "--verify", "echo ran >> ~/vcount-vc2; sleep 6; echo finished-late",
    )  # fmt: skip
    assert start.returncode == 0, start.stderr
    _over(d, "vc2")
    tick = subprocess.Popen(
        [str(LOOOP), "tick"],
        env=home_env(d),
        cwd=str(d.parent),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        sat = h3.home / ".local/share/looop/satellite"
        end = time.monotonic() + 60
        while time.monotonic() < end and not list(sat.glob("*/verify/vc2/pid")):
            time.sleep(0.05)
        assert list(sat.glob("*/verify/vc2/pid")), "the verify never started on the host"
        h3.cut()  # mid-run: the beat loses the host; the run goes on there
        try:
            tick.wait(120)
            assert _verify(d, "vc2") is None  # the answer did not come home this beat
            end = time.monotonic() + 30
            while time.monotonic() < end and not list(sat.glob("*/verify/vc2/result.json")):
                time.sleep(0.1)
        finally:
            h3.restore()
    finally:
        if tick.poll() is None:
            tick.kill()
            tick.wait(10)
    _tick(d)
    got = _verify(d, "vc2")
    assert got is not None and got["pass"] is True and "finished-late" in str(got["output"]), got
    assert _count(h3, "vcount-vc2") == 1
