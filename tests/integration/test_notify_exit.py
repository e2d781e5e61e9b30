"""A one-shot command's notifications reach apprise before the command ends (bounded), or the
events log says they did not; LOOOP_EVENTS_MAX_BYTES sets where events.jsonl rotates."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import clean_env
from tests.integration.test_notify import Endpoint

pytestmark = pytest.mark.timeout(90)

LOOOP = str(Path(sys.executable).parent / "looop")


def _decide_notify(data: Path, message: str, url: str) -> None:
    data.mkdir(parents=True, exist_ok=True)
    decision = json.dumps({"action": "send_notification", "message": message, "id": "rel"})
    tick = f"printf '%s' '{decision}' > .decision.json"
    (data / "config.json").write_text(
        json.dumps({"tick_command": tick, "worker_command": "x", "notify_urls": [url]})
    )


def _records(data: Path, *names: str) -> list[dict[str, object]]:
    lines = (data / "events.jsonl").read_text().splitlines()
    recs = [json.loads(ln) for ln in lines if ln.strip()]
    return [r for r in recs if r.get("event") in names]


@pytest.fixture
def slow() -> Iterator[Endpoint]:
    ep = Endpoint(delay=1.5)  # longer than the rest of a beat: the send outlives the move
    yield ep
    ep.server.shutdown()


def test_a_one_shot_tick_delivers_before_it_exits(tmp_path: Path, slow: Endpoint) -> None:
    data = tmp_path / "data"
    _decide_notify(data, "release 2.1 waits", slow.url)
    env = clean_env(tmp_path, data)
    t0 = time.monotonic()
    r = subprocess.run(
        [LOOOP, "tick", "--force"], env=env, capture_output=True, text=True, timeout=60
    )
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert slow.bodies and slow.bodies[-1]["message"] == "release 2.1 waits"
    assert took < 30  # bounded
    sent = _records(data, "notified")
    delivered = _records(data, "notify_delivered")
    assert len(sent) == len(delivered) >= 1 and not _records(data, "notify_failed")


def test_a_send_that_outlives_the_bound_is_recorded_as_not_delivered(tmp_path: Path) -> None:
    hang = Endpoint(delay=20)
    try:
        data = tmp_path / "data"
        _decide_notify(data, "hello", hang.url)
        env = clean_env(tmp_path, data, LOOOP_NOTIFY_DRAIN_SECS="0.5")
        t0 = time.monotonic()
        r = subprocess.run(
            [LOOOP, "tick", "--force"], env=env, capture_output=True, text=True, timeout=60
        )
        assert r.returncode == 0, r.stderr
        assert time.monotonic() - t0 < 15  # the bound holds, not the endpoint's 20 s
        failed = _records(data, "notify_failed")
        assert len(failed) == 1 and "not delivered" in str(failed[0]["error"])
        assert not _records(data, "notify_delivered")
        assert "not delivered" in r.stderr  # the human sees it too
    finally:
        hang.server.shutdown()


def test_events_rotate_at_the_size_the_env_sets(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    env = clean_env(tmp_path, data, LOOOP_EVENTS_MAX_BYTES="600")
    (data / "config.json").write_text(json.dumps({"tick_command": "true", "worker_command": "x"}))
    for i in range(10):  # ~110 bytes each: past 600 after six
        r = subprocess.run(
            [LOOOP, "goal", "write", f"g{i}", "a goal"], env=env, capture_output=True, text=True
        )
        assert r.returncode == 0, r.stderr
    rotated = data / "events.jsonl.1"
    assert rotated.exists(), "events.jsonl never rotated at 600 bytes"
    assert (data / "events.jsonl").stat().st_size < 600 + 2000  # at most one record past it
    # the default (5 MiB) rotates nothing for so few records
    env2 = clean_env(tmp_path, tmp_path / "d2")
    (tmp_path / "d2").mkdir()
    (tmp_path / "d2" / "config.json").write_text((data / "config.json").read_text())
    for i in range(10):
        subprocess.run([LOOOP, "goal", "write", f"g{i}", "a goal"], env=env2, capture_output=True)
    assert not (tmp_path / "d2" / "events.jsonl.1").exists()
