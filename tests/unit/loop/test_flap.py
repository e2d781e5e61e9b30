from __future__ import annotations

import json

import pytest

from looop.home.config import parse_config
from looop.home.errors import LooopError
from looop.home.knobs import KNOBS
from looop.home.paths import Paths
from looop.loop import flap
from looop.loop.flap import FlapPolicy

DEFAULT = FlapPolicy(
    KNOBS["flap_window"].default, KNOBS["flap_high"].default, KNOBS["flap_low"].default
)


def test_weighted_percent_counts_recent_changes_more() -> None:
    assert flap.percent("", 21) == 0.0
    assert flap.percent("0" * 21, 21) == 0.0
    assert flap.percent("1" * 21, 21) == pytest.approx(100.0)
    newest = flap.percent("1", 21)
    oldest = flap.percent("1" + "0" * 20, 21)
    assert newest == pytest.approx(100 * 1.2 / 21) and oldest == pytest.approx(100 * 0.8 / 21)
    # history longer than the window: only the last `window` beats count
    assert flap.percent("1" * 10 + "0" * 21, 21) == 0.0


def _beat(paths: Paths, sig: str, policy: FlapPolicy = DEFAULT, **more: str) -> flap.FlapResult:
    items = {"snap:sensor-clock": sig, "goal:a": "x", **more}
    return flap.track(paths, items, policy, lambda: {"snap:sensor-clock": "0"})


def test_toggling_sensor_is_damped_on_its_second_change_and_settles_later(paths: Paths) -> None:
    assert _beat(paths, "0").flapping == []  # first sight: no change
    first = _beat(paths, "1")
    assert first.flapping == [] and first.started == []  # one change may be real: it wakes
    second = _beat(paths, "0")
    assert second.started == ["sensor-clock"] and second.flapping == ["sensor-clock"]
    # pinned to the signal the decider last saw
    assert second.pinned == {"snap:sensor-clock": "0"}
    starts, settles, settled_at = 0, 0, None
    for i in range(40):
        res = _beat(paths, str(i % 2) if i < 10 else "9")
        starts += len(res.started)
        settles += len(res.settled)
        if res.settled:
            settled_at = i
            assert res.pinned == {} and res.flapping == []
    assert starts == 0 and settles == 1  # told once each way, not every beat
    # quiet again from i=10: settled once at most one change is left in the window
    assert settled_at is not None and 10 < settled_at < 10 + DEFAULT.window
    assert flap.read_notes(paths) == [
        "sensor-clock started flapping (46% of recent beats changed)",
        "sensor-clock settled: its signal counts again",
    ]


def test_changes_a_window_apart_never_flap(paths: Paths) -> None:
    sig = 0
    for i in range(60):
        if i % DEFAULT.window == DEFAULT.window - 1:
            sig += 1
        assert _beat(paths, str(sig)).flapping == [], i


def test_news_a_quiet_beat_apart_never_flaps_but_a_counter_and_a_slow_toggle_do(
    paths: Paths,
) -> None:
    # an inbox filed, then a new file arriving: each change is worth a decide
    assert [_beat(paths, s).flapping for s in "22001"] == [[]] * 5
    counter = [_beat(paths, str(n), **{"snap:sensor-n": str(n)}).started for n in range(6, 9)]
    assert counter[-1] == ["sensor-n"]  # on its second change in a row (the 1st is news)
    slow = [_beat(paths, "1", **{"snap:sensor-t": s}).started for s in "aabbaabb"]
    assert slow.index(["sensor-t"]) == 6  # its third change within the window


def test_a_change_on_the_beat_after_a_move_is_the_moves_doing_not_a_flap(paths: Paths) -> None:
    # woken by a new file, the loop files it; the sensor reads empty again on the next beat;
    # then a second file, filed too
    for sig in "01010":
        res = _beat(paths, sig)
        assert res.flapping == [], sig
        if sig == "1":
            flap.settle_move(paths, [], acted=True)  # the move that put it back
    # a third change in the window that no move of the loop explains: flapping
    flap.settle_move(paths, [], acted=False)
    assert _beat(paths, "1").started == ["sensor-clock"]


def test_state_survives_a_restart_and_notes_clear_once_shown(paths: Paths) -> None:
    for s in "010":
        _beat(paths, s)
    # a new process reads the same file: still flapping, still pinned
    again = flap.track(paths, {"snap:sensor-clock": "1"}, DEFAULT, lambda: None)
    assert again.flapping == ["sensor-clock"] and again.pinned == {"snap:sensor-clock": "0"}
    notes = flap.read_notes(paths)
    assert len(notes) == 1
    flap.settle_move(paths, notes, acted=False)
    assert flap.read_notes(paths) == []
    assert json.loads(paths.signal_flap.read_text())["items"]["snap:sensor-clock"]["flapping"]


def test_turned_off_nothing_is_pinned(paths: Paths) -> None:
    for s in "010":
        _beat(paths, s)
    off = FlapPolicy(21, 0.0, 0.0)
    res = _beat(paths, "1", off)
    assert res.flapping == [] and res.pinned == {} and res.started == []
    assert _beat(paths, "0", off).flapping == []


def test_a_removed_sensor_is_forgotten_and_corrupt_state_rebaselines(paths: Paths) -> None:
    for s in "010":
        _beat(paths, s)
    flap.track(paths, {"goal:a": "x"}, DEFAULT, lambda: None)
    assert "snap:sensor-clock" not in json.loads(paths.signal_flap.read_text())["items"]
    paths.signal_flap.write_text("{nope")
    assert _beat(paths, "5").flapping == []  # no history: first sight again
    assert _beat(paths, "6").flapping == []
    assert _beat(paths, "7").flapping == ["sensor-clock"]


def test_config_keys_are_validated_in_one_line() -> None:
    ok = parse_config(
        {"tick_command": "x", "flap_window": 30, "flap_high": 25, "flap_low": 10}, "c"
    )
    assert ok.raw["flap_window"] == 30
    for bad, says in [
        ({"flap_window": 1}, "'flap_window' must be an integer from 2 to 1000"),
        ({"flap_high": 150}, "'flap_high' must be a number from 0 to 100"),
        ({"flap_low": "x"}, "'flap_low' must be a number"),
        ({"flap_high": 10, "flap_low": 10}, "'flap_low' (10) must be below 'flap_high' (10)"),
        ({"flap_low": 40}, "'flap_low' (40) must be below 'flap_high' (30)"),
    ]:
        with pytest.raises(LooopError) as e:
            parse_config({"tick_command": "x", **bad}, "c")
        assert says in str(e.value) and "\n" not in str(e.value)
    # damping off: any low is fine
    parse_config({"tick_command": "x", "flap_high": 0, "flap_low": 50}, "c")
