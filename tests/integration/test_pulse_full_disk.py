"""A live pulse on a data dir that fills up: it stays up, says why, and beats again once the
disk has room — its watchdog never takes the full disk for a hang — and its log, written
again by its supervisor, says what it lost.

The pulse, its supervisor and the session host run inside a private mount namespace whose data
dir is a 2 MiB tmpfs a filler file fills; skipped where private mounts are not allowed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import can_mount_privately, outside_env

pytestmark = pytest.mark.timeout(180)

GRACE = 4  # the watchdog's grace (s): a pulse silent this long past its promise restarts

# Runs inside `unshare -m`: every looop process it starts sees the private tmpfs.
DRIVER = r"""
import json, os, subprocess, sys, time
mnt, template, out, grace = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt], check=True)
data = os.path.join(mnt, "data")
subprocess.run(["cp", "-a", template, data], check=True)
env = dict(os.environ, LOOOP_DATA_DIR=data)
log = {"steps": []}

def looop(*args):
    return subprocess.run([sys.executable, "-m", "looop", *args], env=env,
                          capture_output=True, text=True, timeout=60)

def pulse():
    r = looop("status", "--json")
    return json.loads(r.stdout)["pulse"] if r.returncode == 0 else {"error": r.stderr}

def last_sleep():
    lines = [ln for ln in looop("shot", "pulse").stdout.splitlines() if "next beat in" in ln]
    return lines[-1] if lines else ""

def until(what, cond, secs):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        if cond():
            log["steps"].append(what)
            return True
        time.sleep(0.3)
    log["steps"].append("timed out: " + what)
    return False

def hold(secs, pid):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        p = pulse()
        if not (p.get("running") and p.get("pid") == pid and p.get("restarts") == 0):
            log["broke"] = p
            return False
        time.sleep(0.5)
    return True

try:
    r = looop("up")
    log["up"] = r.stdout + r.stderr
    if until("asleep", lambda: "(" in last_sleep(), 30):
        pid = log["pid"] = pulse().get("pid")
        avail = os.statvfs(mnt).f_bavail * os.statvfs(mnt).f_frsize
        with open(os.path.join(mnt, "filler"), "wb") as f:
            try:
                f.write(b"\0" * avail)
                f.flush()
            except OSError:
                pass
        # … and the last page of the pulse's log, so its next write fails (a few lines a
        # beat could fit there for the whole spell: the log would never have been lost)
        plog = os.path.join(data, "sessions", "pulse", "log", "output.log")
        fd = os.open(plog, os.O_WRONLY | os.O_APPEND)
        try:
            while True:
                os.write(fd, b"." * 511 + b"\n")
        except OSError:
            os.close(fd)
        full = until("said", lambda: "No space left" in looop("shot", "pulse").stdout, 30)
        log["held_full"] = full and hold(grace + 6, pid)
        log["screen_full"] = looop("shot", "pulse").stdout
        os.unlink(os.path.join(mnt, "filler"))
        log["recovered"] = until("beats", lambda: "failing" not in last_sleep(), 30)
        def resumed():  # the pulse's log says its gap, then goes on with the beats
            text = looop("log", "pulse").stdout
            gap = text.rfind("looop: output.log lost ")
            return gap >= 0 and "next beat in" in text[gap:]
        until("logged again", resumed, 30)
        log["log_after"] = looop("log", "pulse").stdout[-4000:]
        log["after"] = pulse()
        log["screen_after"] = looop("shot", "pulse").stdout
finally:
    r = looop("down")
    log["down"] = [r.returncode, r.stdout + r.stderr]
    with open(os.path.join(out, "result.json"), "w") as f:
        json.dump(log, f)
"""


def test_a_full_data_dir_neither_stops_nor_restarts_the_pulse_and_it_recovers(
    tmp_path: Path,
) -> None:
    if not can_mount_privately(tmp_path):
        pytest.skip("cannot make a private tmpfs mount here")
    mnt, out, template = tmp_path / "mnt", tmp_path / "out", tmp_path / "template"
    for d in (mnt, out, template / "sensors", template / "inbox"):
        d.mkdir(parents=True)
    script = tmp_path / "script.json"
    script.write_text(json.dumps([{"decision": {"action": "noop", "reason": "settled"}}]))
    runner = f"{sys.executable} -m looop.demo.runner --script {script}"
    cfg = {"default": "s", "runners": {"s": {"tick": runner, "worker": "cat"}}, "max_daily_usd": 0}
    (template / "config.json").write_text(json.dumps(cfg))
    sensor = template / "sensors" / "clock.sh"  # a new reading every beat: each beat writes
    sensor.write_text('#!/bin/sh\nprintf \'{"signal":{"t":"%s"}}\\n\' "$(date +%s%N)"\n')
    sensor.chmod(0o755)
    env = outside_env(
        LOOOP_INTERVAL="2",
        LOOOP_BACKOFF_MAX_SECS="2",
        LOOOP_PULSE_RESTART_SECS="0.5",
        LOOOP_PULSE_RESTART_MAX_SECS="2",
        LOOOP_PULSE_WATCHDOG_SECS=str(GRACE),
    )
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    r = subprocess.run(
        ["unshare", "-m", sys.executable, str(driver), str(mnt), str(template), str(out), "4"],
        env=env,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((out / "result.json").read_text())
    assert res["steps"][:2] == ["asleep", "said"], res
    assert res["held_full"], res.get("broke")  # the same pulse, never restarted, while full
    assert "No space left on device" in res["screen_full"]  # … and it says why
    assert res["recovered"], res["screen_after"][-2000:]  # beats again once there is room
    # its log, the record of why it stopped, is written again and says what it lost
    assert res["steps"][-1] == "logged again", (res["steps"], res.get("log_after", "")[-2000:])
    lost = r"looop: output.log lost \d+ bytes of output between .*No space"
    assert re.search(lost, res["log_after"]), res["log_after"][-2000:]
    after = res["after"]
    assert after["running"] and after["pid"] == res["pid"] and after["restarts"] == 0, after
    assert res["down"][0] == 0, res["down"]
