"""A sensor's output has one type (`Reading`) and a beat's world one more (`Snapshot`): built
once where the output is parsed, their JSON on disk is the published form, byte for byte."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, cast

import pytest

from looop.act.actiontable import taught
from looop.core.context import Ctx
from looop.core.readings import Reading, Snapshot, read_reading
from looop.decide.prompt import PromptExtras, build_prompt
from looop.home.paths import Paths
from looop.home.worldhash import world_hash_at
from looop.sense.probes import run_probes
from looop.views.statustext import add_v1_fields
from looop.workers import needsinput

# a sensor's own spelling: spaces, key order and an extra key are its business, kept as is
SENSOR = b'{ "detail": {"checked": "10:00"},  "signal": {"inbox": 3}, "extra": [1, 2.50] }\n'


def test_a_sensor_reading_keeps_its_bytes_and_names_its_parts() -> None:
    r = Reading.from_json("sensor-inbox", SENSOR, secs=0.2)
    assert r.to_json() == SENSOR  # the snapshot file's bytes, untouched
    assert (r.signal, r.detail, r.is_json, r.failed) == (
        {"inbox": 3},
        {"checked": "10:00"},
        True,
        False,
    )
    assert r.value["extra"] == [1, 2.5]
    # a bare value is all signal, as the world hash reads it
    bare = Reading.from_json("sensor-n", b"[1, 2]\n")
    assert (bare.signal, bare.detail) == ([1, 2], None)


@pytest.mark.parametrize(
    "body",
    [b"not json\n", b'{"signal": NaN}\n', b'{"signal": "\\ud800"}\n', b"\xff\xfe{}\n"],
)
def test_a_snapshot_that_is_not_json_looop_carries_stays_bytes(body: bytes) -> None:
    r = Reading.from_json("sensor-odd", body)
    assert (r.is_json, r.value, r.signal, r.failed) == (False, None, None, False)
    assert r.to_json() == body
    assert r.text == body.decode("utf-8", "replace")


def test_a_failed_runs_shapes_read_as_failed() -> None:
    for sig in ({"error": True, "exit_code": 1}, {"error": "oversize", "cap": 9}):
        assert Reading("sensor-x", {"signal": sig}, True).failed
    for value in ({"signal": {"error": True}}, {"signal": {"error": "disk full"}}, [1]):
        assert not Reading("sensor-x", value, True).failed


def test_a_probe_value_json_cannot_carry_is_refused_not_written() -> None:
    with pytest.raises(ValueError):
        Reading.of("sys-x", {"signal": math.nan})
    r = Reading.of("sys-x", {"signal": {"b": 1, "a": "é"}})
    assert r.to_json() == '{"signal":{"a":"é","b":1}}\n'.encode()


def test_the_beat_snapshot_is_what_status_json_publishes(ctx: Ctx, paths: Paths) -> None:
    """status --json's `snapshots` (docs/schema/state.schema.json) from the files, and the
    beat's Snapshot of the same readings, say the same thing."""
    probes = {
        "sys-a": lambda c: {"detail": {"n": 1}, "signal": ["x"]},
        "sys-b": lambda c: {"signal": {"ok": True}},
    }
    readings = run_probes(ctx, probes)
    paths.snapshots.joinpath("sensor-inbox.json").write_bytes(SENSOR)
    readings.append(read_reading(str(paths.snapshots), "sensor-inbox"))
    data = str(paths.data)
    snap = Snapshot.of(world_hash_at(data, damped=False), readings)
    published = add_v1_fields(cast(Any, {"data_dir": data}))
    assert json.dumps(snap.to_json(), sort_keys=True) == json.dumps(
        published["snapshots"], sort_keys=True
    )
    assert [r.name for r in snap] == ["sensor-inbox", "sys-a", "sys-b"]
    for r in snap:  # the bytes the beat holds are the file's
        assert r.to_json() == (paths.snapshots / r.file_name).read_bytes()


def test_a_missing_or_unreadable_snapshot_reads_as_no_reading(paths: Paths) -> None:
    missing = read_reading(str(paths.snapshots), "sensor-gone")
    assert (missing.body, missing.ok, missing.is_json) == (None, False, False)
    paths.snapshots.mkdir()
    (paths.snapshots / "sensor-dir.json").mkdir()  # not a file: never opened as one
    odd = read_reading(str(paths.snapshots), "sensor-dir")
    assert odd.body is None and odd.error is not None and odd.text.startswith("(unreadable")


def _prompt(ctx: Ctx, snapshot: Snapshot | None) -> str:
    return build_prompt(ctx, ctx.knobs(), PromptExtras(actions=taught()), snapshot).text


def test_the_prompt_shows_the_readings_the_beat_sensed(ctx: Ctx, paths: Paths) -> None:
    """The beat hashes its readings and the prompt shows the same ones: a snapshot file that
    moved after the beat sensed (a hand edit, a stray writer) is not what the decider sees."""
    paths.snapshots.mkdir()
    sensed = Reading.from_json("sensor-ci", b'{"signal": {"ci": "green"}}\n')
    paths.snapshots.joinpath("sensor-ci.json").write_bytes(b'{"signal": {"ci": "red"}}\n')
    beat = _prompt(ctx, Snapshot.of("h", [sensed]))
    assert '{"signal":{"ci":"green"}}' in beat and '"red"' not in beat
    # without a beat (a dry prompt, the bench) the files are read as they are
    assert '{"signal":{"ci":"red"}}' in _prompt(ctx, None)


def test_the_prompt_splits_sys_sessions_from_the_typed_reading(ctx: Ctx, paths: Paths) -> None:
    value = {
        "detail": {"count": 1, "workers": {"w1": {"idle_s": 40, "pending_tells": 0}}},
        "signal": [{"id": "w1", "state": "running", "exit_code": None, "health": "ok"}],
    }
    text = _prompt(ctx, Snapshot.of("h", [Reading.of("sys-sessions", value)]))
    assert "--- sys-sessions.json worker w1" in text
    assert '"age":{"idle":"<1m"}' in text  # the age, coarse, with what moves
    readings = text.split("=== SENSOR READINGS ===", 1)[1].split("\n=== ", 1)[0]
    assert "idle" not in readings


def test_needs_input_is_told_from_the_beats_reading(ctx: Ctx, paths: Paths) -> None:
    """The beat hands its sys-sessions reading over; the file is not read again."""
    value = {
        "detail": {"workers": {"w1": {"needs_input": "Allow edit? (y/n)"}}},
        "signal": [{"id": "w1", "health": "needs-input"}],
    }
    told = needsinput.tell(ctx, None, Reading.of("sys-sessions", value))
    assert told == 1
    recorded = [json.loads(ln) for ln in Path(paths.events).read_text().splitlines()]
    assert [(e["event"], e["id"], e["said"]) for e in recorded] == [
        ("worker_needs_input", "w1", "Allow edit? (y/n)")
    ]
    # a reading that is not the probe's shape says nothing, whatever its list holds
    bare = Reading.of("sys-sessions", [{"id": "w2", "health": "needs-input"}])
    assert needsinput.tell(ctx, None, bare) == 0


def test_a_usage_limit_is_told_from_the_beats_reading(ctx: Ctx, paths: Paths) -> None:
    value = {"detail": {"workers": {}}, "signal": [{"id": "w1", "health": "limited until 14:05"}]}
    assert needsinput.tell(ctx, None, Reading.of("sys-sessions", value)) == 1
    assert needsinput.tell(ctx, None, Reading.of("sys-sessions", value)) == 0
    recorded = [json.loads(ln) for ln in Path(paths.events).read_text().splitlines()]
    assert [(e["event"], e["id"], e["health"]) for e in recorded] == [
        ("worker_limited", "w1", "limited until 14:05")
    ]
