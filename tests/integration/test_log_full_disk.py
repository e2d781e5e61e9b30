"""A worker's output.log on a disk that fills up and empties again: its supervisor (real, with a
real PTY) drops what the worker prints while the disk is full, never stops reading it, tries the
log again once its backoff is over, and writes on once there is room — `looop log` shows the
output printed after — with one line in the worker's record naming the worker and the span
that was lost.

Runs inside a private mount namespace whose data dir is a 2 MiB tmpfs a filler fills; skipped
where private mounts are not allowed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import can_mount_privately, outside_env

pytestmark = [pytest.mark.timeout(150), pytest.mark.process]

# The worker: a numbered line every 20 ms, its last number also in a file off the tmpfs.
PRINTER = r"""
import sys, time
count = sys.argv[1]
n = 0
while True:
    n += 1
    print(f"line {n} " + "x" * 60, flush=True)
    with open(count + ".tmp", "w") as f:
        f.write(str(n))
    import os; os.replace(count + ".tmp", count)
    time.sleep(0.02)
"""

# Runs inside `unshare -m`: every looop process it starts sees the private tmpfs.
DRIVER = r"""
import json, os, subprocess, sys, time
mnt, template, out, printer = sys.argv[1:5]
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt], check=True)
data = os.path.join(mnt, "data")
subprocess.run(["cp", "-a", template, data], check=True)
env = dict(os.environ, LOOOP_DATA_DIR=data)
count = os.path.join(out, "count")
res = {"steps": []}

def looop(*args):
    return subprocess.run([sys.executable, "-m", "looop", *args], env=env,
                          capture_output=True, text=True, timeout=60)

def printed():
    try:
        return int(open(count).read() or 0)
    except (OSError, ValueError):
        return 0

# Whether the supervisor holds output.log open: it lets go once a write to it failed (the
# disk full), so that is when it has dropped output, however late a load let it read.
def log_held():
    meta = json.load(open(os.path.join(data, "sessions", "w1", "meta.json")))
    fds = f"/proc/{meta['supervisor_pid']}/fd"
    held = []
    for fd in os.listdir(fds):
        try:
            held.append(os.readlink(os.path.join(fds, fd)))
        except OSError:
            pass
    return any(p.endswith("/output.log") and "/sessions/w1/" in p for p in held)

def until(what, cond, secs):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        if cond():
            res["steps"].append(what)
            return True
        time.sleep(0.1)
    res["steps"].append("timed out: " + what)
    return False

try:
    cmd = f"{sys.executable} {printer} {count} # {{{{prompt_file}}}}"
    r = looop("worker", "start", "w1", "go", "--command", cmd)
    res["start"] = [r.returncode, r.stderr]
    if until("printing", lambda: printed() > 20 and log_held(), 30):
        avail = os.statvfs(mnt).f_bavail * os.statvfs(mnt).f_frsize
        with open(os.path.join(mnt, "filler"), "wb") as f:
            try:
                f.write(b"\0" * avail)
                f.flush()
            except OSError:
                pass
        res["full_at"] = printed()
        # 100 lines printed may yet sit in the PTY, unread, on a loaded machine: the log
        # lost nothing if the disk had room again by the time it was read
        full = lambda: printed() > res["full_at"] + 100 and not log_held()
        until("printed while full", full, 60)
        os.unlink(os.path.join(mnt, "filler"))
        res["freed_at"] = printed()
        until("printed after", lambda: printed() > res["freed_at"] + 100, 30)
        res["log"] = looop("log", "w1").stdout
        res["status"] = json.load(open(os.path.join(data, "sessions", "w1", "status.json")))
        res["last"] = printed()
finally:
    r = looop("kill", "w1")
    res["kill"] = [r.returncode, r.stderr]
    with open(os.path.join(out, "result.json"), "w") as f:
        json.dump(res, f)
"""


def test_the_log_of_a_worker_is_written_again_once_the_full_disk_has_room(
    tmp_path: Path,
) -> None:
    if not can_mount_privately(tmp_path):
        pytest.skip("cannot make a private tmpfs mount here")
    mnt, out, template = tmp_path / "mnt", tmp_path / "out", tmp_path / "template"
    for d in (mnt, out, template):
        d.mkdir(parents=True)
    cfg = {"default": "s", "runners": {"s": {"worker": "cat"}}, "max_daily_usd": 0}
    (template / "config.json").write_text(json.dumps(cfg))
    printer, driver = tmp_path / "printer.py", tmp_path / "driver.py"
    printer.write_text(PRINTER)
    driver.write_text(DRIVER)
    r = subprocess.run(
        [
            "unshare",
            "-m",
            sys.executable,
            str(driver),
            str(mnt),
            str(template),
            str(out),
            str(printer),
        ],
        env=outside_env(),
        capture_output=True,
        text=True,
        timeout=140,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((out / "result.json").read_text())
    assert res["steps"] == ["printing", "printed while full", "printed after"], res
    numbers = [int(n) for n in re.findall(r"^line (\d+) ", res["log"], re.M)]
    assert numbers and numbers[0] == 1
    # what came after the disk had room is in the log: not one line lost at its end
    assert max(numbers) > res["freed_at"] + 50, (max(numbers), res["freed_at"])
    missing = sorted(set(range(1, max(numbers))) - set(numbers))
    assert missing, "the disk was full: some output had to be lost"
    assert min(missing) > res["full_at"] - 50  # lost only around the full disk
    gap = res["status"].get("log_gap") or ""
    span = r"between \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ and \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
    assert re.fullmatch(rf"w1: output.log lost \d+ bytes of output {span} \(.*No space.*\)", gap)
    # … and so does the log itself, where each gap is: a full tmpfs still takes a few bytes
    # into a page the log holds, so a write tried again can meet the full disk once more
    said = re.findall(r"^looop: (output.log lost .*)$", res["log"], re.M)
    assert said and said[-1] == gap.removeprefix("w1: "), said
    assert all(re.fullmatch(rf"output.log lost \d+ bytes of output {span} \(.*\)", s) for s in said)
    assert res["kill"][0] == 0, res["kill"]
