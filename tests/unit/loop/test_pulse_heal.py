"""The pulse's own bookkeeping failing (EROFS, EIO): a failed beat, never the pulse's end."""

from __future__ import annotations

import dataclasses
import errno
from typing import Any

import pytest

from looop.core.context import Ctx
from looop.loop import pulse as pulse_mod
from looop.loop.beat import TickOutcome
from looop.loop.heartbeat import heartbeat_path, sd_notify
from looop.loop.pulse import Pulse
from tests.clocks import StillClock


def _run(ctx: Ctx, monkeypatch: pytest.MonkeyPatch, beats: list[Any], n: int) -> list[float]:
    """Run n beats whose tick() does what `beats` says in turn; return the sleeps chosen."""
    rests: list[float] = []
    plan = iter(beats)

    def fake_tick(_ctx: Ctx, **_kw: Any) -> TickOutcome:
        step = next(plan)
        if isinstance(step, BaseException):
            raise step
        assert isinstance(step, TickOutcome)
        return step

    monkeypatch.setattr(pulse_mod, "tick", fake_tick)
    p = Pulse(ctx, max_beats=n)
    monkeypatch.setattr(p, "_rest", rests.append)
    assert p._loop() == 0
    assert p.beats == n
    return rests


def _erofs() -> OSError:
    return OSError(errno.EROFS, "Read-only file system", "events.jsonl")


def test_an_erofs_that_even_the_crash_record_hits_is_a_failed_beat_and_the_next_works(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_record = ctx.events.record

    def record(event: Any, **fields: Any) -> None:
        if event in ("tick_crash", "pulse_sleep"):
            raise _erofs()
        real_record(event, **fields)

    monkeypatch.setattr(ctx.events, "record", record)
    ok = TickOutcome(status="decided", decided=True)
    sleeps = _run(ctx, monkeypatch, [_erofs(), ok, ok], 3)
    # beat 1 failed on the data dir: a failed beat, backed off (60 s, doubling)
    assert sleeps[0] == 60
    lines = [f["msg"] for name, f in ctx.events.seen if name == "tick.failed"]
    assert len(lines) == 1 and "Read-only file system" in lines[0]
    # beat 2 worked (even with events still failing for its sleep record): normal cadence
    assert sleeps[1] == ctx.knobs().interval_for("idle")


def test_failed_beats_on_the_data_dir_back_off_doubling_and_capped(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert isinstance(ctx.env, dict)
    ctx.env["LOOOP_BACKOFF_MAX_SECS"] = "150"
    real_record = ctx.events.record

    def record(event: Any, **fields: Any) -> None:
        if event == "tick_crash":  # the failure cannot be written either
            raise OSError(errno.EIO, "Input/output error")
        real_record(event, **fields)

    monkeypatch.setattr(ctx.events, "record", record)
    eio = OSError(errno.EIO, "Input/output error")
    sleeps = _run(ctx, monkeypatch, [eio, eio, eio, TickOutcome(status="skip"), eio], 5)
    assert sleeps == [60, 120, 150, ctx.knobs().interval_for("idle")]


def test_each_beat_promises_a_heartbeat_the_watchdog_reads(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    real_promise = pulse_mod.Heartbeat.promise

    def promise(heart: Any, secs: float) -> None:
        real_promise(heart, secs)
        seen.append(heartbeat_path(ctx).read_text())

    monkeypatch.setattr(pulse_mod.Heartbeat, "promise", promise)
    _run(ctx, monkeypatch, [TickOutcome(status="skip"), TickOutcome(status="skip")], 2)
    assert float(seen[0].split()[0]) >= ctx.knobs().num("tick_timeout_secs")  # the runner's
    assert len(set(seen)) == len(seen) == 2  # each sign differs: the watchdog sees it change
    assert not heartbeat_path(ctx).exists()  # a stopped pulse leaves none behind


def test_sd_notify_sends_one_datagram_and_refuses_what_is_no_socket(tmp_path: Any) -> None:
    import socket

    addr = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(addr)
        assert sd_notify(addr, "READY=1")
        assert s.recv(100) == b"READY=1"
    assert not sd_notify("", "READY=1")
    assert not sd_notify("relative/path", "READY=1")
    assert not sd_notify(str(tmp_path / "gone"), "WATCHDOG=1")


class _BusyStream:
    """A stream the main thread is in the middle of writing: Python's buffered writers raise
    on a reentrant write, which is what a signal handler's write meets there."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.busy = True

    def write(self, text: str) -> int:
        if self.busy:
            raise RuntimeError("reentrant call inside <_io.BufferedWriter name='<stdout>'>")
        self.lines.append(text)
        return len(text)

    def flush(self) -> None:
        pass


def test_a_stop_signal_mid_write_stops_the_pulse_and_is_said_once_the_stream_is_free(
    ctx: Ctx,
) -> None:
    import signal
    from dataclasses import replace

    stream = _BusyStream()
    events = replace(ctx.events, stream=stream)
    p = Pulse(replace(ctx, events=events))
    p._on_signal(signal.SIGTERM, None)  # must not raise into the interrupted write
    assert p.stop.is_set()
    stream.busy = False
    p._say_stop()
    said = "".join(stream.lines)
    assert said.index("SIGTERM: finishing this beat, then stopping") < said.index("stopped")
    p._say_stop()  # said once, not again
    assert "".join(stream.lines).count("SIGTERM") == 1


def test_a_heartbeat_that_cannot_be_written_is_said_once_and_again_when_it_can(
    ctx: Ctx,
) -> None:
    from looop.loop.heartbeat import Heartbeat

    heart = Heartbeat(ctx)
    heart.promise(5)
    path = heartbeat_path(ctx)
    path.unlink()
    path.mkdir()  # nothing can be renamed onto it: every write fails
    heart.promise(5)
    heart.promise(5)
    said = [f["msg"] for name, f in ctx.events.seen if name == "pulse.heartbeat"]
    assert len(said) == 1 and "cannot write the heartbeat" in said[0], said
    assert f"restarts this pulse in {5 + heart.grace:.0f}s" in said[0]
    path.rmdir()
    heart.promise(5)
    said = [f["msg"] for name, f in ctx.events.seen if name == "pulse.heartbeat"]
    assert said[1:] == ["the heartbeat is written again"]
    assert path.read_text().split()[2] == "4"  # its fourth sign, written


class _Watch:
    """A watched path that changes `after` seconds into the sleep, then all the time."""

    def __init__(self, clock: StillClock, after: float) -> None:
        self.clock, self.at, self.waits = clock, clock.mono + after, 0

    def wait(self, timeout: float | None) -> bool:
        self.waits += 1
        quiet = min(timeout or 0, max(0.0, self.at - self.clock.mono))
        self.clock.mono += quiet
        return self.clock.mono >= self.at


def test_a_watch_that_never_rests_wakes_the_pulse_at_once_then_no_sooner_than_its_floor(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = StillClock()
    p = Pulse(dataclasses.replace(ctx, clock=clock))

    def wait(timeout: float | None = None) -> bool:  # the sleep, on the still clock
        clock.mono += timeout or 0
        return False

    monkeypatch.setattr(p.stop, "wait", wait)
    # the first change after a quiet spell wakes at once
    p.watcher = _Watch(clock, 0)  # type: ignore[assignment]
    assert p._rest(300) is True and clock.mono == 0
    p.woken_at = clock.mono  # it woke: one more at once is a burst, held to the floor
    p.watcher = hot = _Watch(clock, 0)  # type: ignore[assignment]
    assert p._rest(300) is True
    assert clock.mono == pulse_mod.WOKEN_MIN_SECS and hot.waits == 1
    # a change after the floor wakes at once, as before
    p.watcher = _Watch(clock, 30)  # type: ignore[assignment]
    began = clock.mono
    assert p._rest(300) is True and clock.mono == began + 30
    # and a quiet sleep ends at its end, not woken
    p.watcher = _Watch(clock, 400)  # type: ignore[assignment]
    began = clock.mono
    assert p._rest(300) is False and clock.mono == began + 300
