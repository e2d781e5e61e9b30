"""A data dir on a full disk: one clear line, nothing half-written, committed state intact.

Each test runs looop inside a private mount namespace on a 1 MiB tmpfs that a filler file
fills up; skipped where the machine does not allow private mounts."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import can_mount_privately

pytestmark = pytest.mark.timeout(120)


def _template(tmp: Path, steps: list[dict[str, object]]) -> Path:
    """A data dir prepared on the real disk (copied onto the tmpfs once mounted): a scripted
    decider taking `steps`, a sensor counting inbox/."""
    script = tmp / "script.json"
    script.write_text(json.dumps(steps))
    template = tmp / "template"
    (template / "sensors").mkdir(parents=True)
    (template / "inbox").mkdir()
    runner = f"{sys.executable} -m looop.demo.runner --script {script}"
    cfg = {"default": "s", "runners": {"s": {"tick": runner, "worker": "cat"}}, "max_daily_usd": 0}
    (template / "config.json").write_text(json.dumps(cfg))
    sensor = template / "sensors" / "inbox.sh"
    sensor.write_text('#!/bin/sh\nprintf \'{"signal":{"n":%s}}\\n\' "$(ls inbox | wc -l)"\n')
    sensor.chmod(0o755)
    return template


def _scenario(tmp: Path, steps: list[dict[str, object]], leave_kib: int) -> dict[str, object]:
    """Beat once with room, fill the disk to `leave_kib` free, beat again; copy everything out."""
    if not can_mount_privately(tmp):
        pytest.skip("cannot make a private tmpfs mount here")
    mnt, out = tmp / "mnt", tmp / "out"
    mnt.mkdir()
    out.mkdir()
    first = [{"decision": {"action": "noop", "reason": "settled"}}]
    template = _template(tmp, first + steps)
    data = mnt / "data"
    looop = f"{shlex.quote(sys.executable)} -m looop"
    q = shlex.quote
    body = f"""
set -e
mount -t tmpfs -o size=1m tmpfs {q(str(mnt))}
cp -a {q(str(template))} {q(str(data))}
export LOOOP_DATA_DIR={q(str(data))} LOOOP_LOG_FORMAT=json LOOOP_COLOR=0
{looop} tick > {q(str(out / "first"))} 2>&1
cp {q(str(data / ".last-tick-hash"))} {q(str(out / "hash.before"))}
cp {q(str(data / "journal.md"))} {q(str(out / "journal.before"))}
touch {q(str(data / "inbox" / "new"))}
avail=$(df -k --output=avail {q(str(mnt))} | tail -1)
dd if=/dev/zero of={q(str(mnt / "filler"))} bs=1k count=$((avail - {leave_kib})) 2>/dev/null
df -k {q(str(mnt))} > {q(str(out / "df"))}
set +e
{looop} tick > {q(str(out / "stdout"))} 2> {q(str(out / "stderr"))}
echo $? > {q(str(out / "rc"))}
rm -f {q(str(mnt / "filler"))}
cp -a {q(str(data))} {q(str(out / "data"))}
"""
    r = subprocess.run(["unshare", "-m", "sh", "-c", body], capture_output=True, timeout=100)
    first_out = (out / "first").read_text() if (out / "first").exists() else ""
    assert r.returncode == 0, r.stderr.decode() + first_out
    return {
        "rc": int((out / "rc").read_text()),
        "stderr": (out / "stderr").read_text(),
        "stdout": (out / "stdout").read_text(),
        "data": out / "data",
        "hash_before": (out / "hash.before").read_text(),
        "journal_before": (out / "journal.before").read_text(),
    }


def _leftovers(data: Path) -> list[str]:
    return [str(p) for p in data.rglob("*") if ".tmp" in p.name]


def test_no_space_at_all_is_one_line_and_nothing_half_written(tmp_path: Path) -> None:
    res = _scenario(tmp_path, [{"decision": {"action": "noop", "reason": "x"}}], leave_kib=0)
    data = res["data"]
    assert isinstance(data, Path)
    assert res["rc"] == 1
    errors = [
        json.loads(ln)
        for ln in (str(res["stdout"]) + str(res["stderr"])).splitlines()
        if ln.startswith("{") and '"tick.error"' in ln
    ]
    assert len(errors) == 1, res["stderr"]
    msg = errors[0]["msg"]
    assert "No space left on device" in msg and "stale world" in msg and "\n" not in msg
    assert _leftovers(data) == []
    # what the last good beat committed is untouched
    assert (data / ".last-tick-hash").read_text() == res["hash_before"]
    assert (data / "journal.md").read_text() == res["journal_before"]


def test_room_to_sense_but_not_to_decide_fails_the_beat_cleanly(tmp_path: Path) -> None:
    big = {"decision": {"action": "write_goal", "id": "big", "body": "x" * 300_000}}
    res = _scenario(tmp_path, [big], leave_kib=120)
    data = res["data"]
    assert isinstance(data, Path)
    assert res["rc"] == 1
    failure = json.loads((data / ".last-failure.json").read_text())
    assert "No space left on device" in failure["error"]
    assert json.loads((data / ".tick-backoff").read_text())["fails"] == 1
    assert not (data / "goals" / "big.md").exists()
    assert not (data / ".decision.json").exists()
    assert _leftovers(data) == []
    assert (data / ".last-tick-hash").read_text() == res["hash_before"]
    assert (data / "journal.md").read_text() == res["journal_before"]


def test_a_run_shell_that_fills_the_disk_is_reported_as_having_run(tmp_path: Path) -> None:
    # the command itself eats the last free block: whatever the beat can no longer record, it
    # must never claim that nothing happened
    fill = "dd if=/dev/zero of=../eaten bs=1k count=4096 2>/dev/null; echo filled"
    step = {"decision": {"action": "run_shell", "cmd": fill, "reason": "fill"}}
    res = _scenario(tmp_path, [step], leave_kib=200)
    out = str(res["stdout"]) + str(res["stderr"])
    assert "Traceback" not in out
    assert "nothing was half-written" not in out
    lines = [json.loads(ln) for ln in out.splitlines() if ln.startswith("{")]
    said = " ".join(str(e.get("msg", "")) for e in lines)
    data = res["data"]
    assert isinstance(data, Path)
    assert "run-shell · fill" in (data / "journal.md").read_text()  # it ran, and says so
    if res["rc"] != 0:  # the beat could not record the rest: its failure line says it ran
        assert "shell ran and was journaled" in said, out
        assert "do not repeat" in said
    assert _leftovers(data) == []


def test_a_full_disk_names_the_worker_that_filled_it(tmp_path: Path) -> None:
    """A live worker writes until the data dir's disk is full: the next beat fails in one line
    naming that worker and where its bytes are, and nothing is half-written."""
    if not can_mount_privately(tmp_path):
        pytest.skip("cannot make a private tmpfs mount here")
    mnt, out = tmp_path / "mnt", tmp_path / "out"
    for d in (mnt, out):
        d.mkdir()
    template = _template(tmp_path, [{"decision": {"action": "noop", "reason": "x"}}] * 3)
    q, data = shlex.quote, mnt / "data"
    looop = f"{q(sys.executable)} -m looop"
    fill = 'dd if=/dev/zero of="$LOOOP_REPORTS_DIR/w1.bin" bs=1k count=8192 2>/dev/null'
    command = q(f"{fill}; exec sleep 600 # {{{{prompt_file}}}}")
    body = f"""
set -e
mount -t tmpfs -o size=2m tmpfs {q(str(mnt))}
cp -a {q(str(template))} {q(str(data))}
export LOOOP_DATA_DIR={q(str(data))} LOOOP_LOG_FORMAT=json LOOOP_COLOR=0
{looop} tick > {q(str(out / "first"))} 2>&1
{looop} worker start w1 fill --command {command} --no-sandbox > /dev/null
n=0
while [ "$(df -k --output=avail {q(str(mnt))} | tail -1)" -gt 4 ]; do
  n=$((n + 1)); [ "$n" -lt 600 ] || exit 3  # the worker never filled it
  sleep 0.05
done
set +e
touch {q(str(data / "inbox" / "new"))}
{looop} tick > {q(str(out / "stdout"))} 2> {q(str(out / "stderr"))}
echo $? > {q(str(out / "rc"))}
LOOOP_LOG_FORMAT=text {looop} status > {q(str(out / "status"))} 2>&1
{looop} doctor > {q(str(out / "doctor"))} 2>&1
{looop} kill w1 > /dev/null 2>&1
rm -f {q(str(data / "reports" / "w1.bin"))}
{looop} tick > {q(str(out / "again"))} 2>&1
echo $? > {q(str(out / "rc2"))}
"""
    r = subprocess.run(["unshare", "-m", "sh", "-c", body], capture_output=True, timeout=100)
    assert r.returncode == 0, r.stderr.decode() + (out / "first").read_text()
    said = (out / "stdout").read_text() + (out / "stderr").read_text()
    assert int((out / "rc").read_text()) == 1, said
    errors = [json.loads(ln) for ln in said.splitlines() if '"tick.error"' in ln]
    assert len(errors) == 1, said
    msg = errors[0]["msg"]
    assert "No space left on device" in msg and "\n" not in msg
    assert "worker w1 keeps the most" in msg and "reports/w1*" in msg, msg
    # status and doctor name the full disk, doctor who filled it
    status = (out / "status").read_text()
    assert "the data dir's disk is full" in status and "looop doctor" in status, status
    doctor = (out / "doctor").read_text()
    assert "disk is full" in doctor and "worker w1 keeps the most" in doctor, doctor
    # space back: the next beat decides
    again = (out / "again").read_text()
    assert int((out / "rc2").read_text()) == 0, again
