"""The pump room on its own: `PtyReader` over a real pipe (any readable fd behaves like a PTY
master for it) and the `Pump`'s burst detection. The PTY itself is covered by
tests/integration/test_pump_stream.py."""

from __future__ import annotations

import asyncio
import os
import select
import threading
from collections.abc import Iterator

import pytest

from looop.sessions import pump as pump_mod
from looop.sessions.pump import HANDOFF_MAX, READ_BATCH, READ_SIZE, PtyReader, Pump
from tests.helpers import wait_until

pytestmark = pytest.mark.timeout(30)


def _payload(size: int) -> bytes:
    """Numbered records, so a lost, doubled or reordered chunk changes the bytes."""
    out = bytearray()
    n = 0
    while len(out) < size:
        out += b"%09d|" % n
        n += 1
    return bytes(out[:size])


class Pipe:
    """A pipe whose read end is non-blocking, like a PTY master; each end closed once."""

    def __init__(self) -> None:
        self.r, self.w = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(self.r, False)
        self.open = {self.r, self.w}
        self.lock = threading.Lock()

    def close(self, fd: int) -> None:
        with self.lock:
            if fd in self.open:
                self.open.discard(fd)
                os.close(fd)

    def close_all(self) -> None:
        for fd in tuple(self.open):
            self.close(fd)


@pytest.fixture
def pipe() -> Iterator[Pipe]:
    p = Pipe()
    yield p
    p.close_all()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view[:65536]) :]


class Sink:
    """What the loop received: the chunks in order and when `done` came."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.done_after: int | None = None  # chunks delivered before `done`
        self.done_calls = 0

    def deliver(self, data: bytes) -> None:
        self.chunks.append(data)

    def done(self) -> None:
        self.done_calls += 1
        self.done_after = len(self.chunks)

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)


def test_a_5mb_stream_arrives_whole_in_order_and_done_comes_after_the_last_byte(
    pipe: Pipe,
) -> None:
    r, w = pipe.r, pipe.w
    payload = _payload(5 * 1024 * 1024)
    sink = Sink()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        finished = asyncio.Event()

        def done() -> None:
            sink.done()
            finished.set()

        reader = PtyReader(r, loop, sink.deliver, done)
        writer = threading.Thread(target=lambda: (_write_all(w, payload), pipe.close(w)))
        writer.start()
        await asyncio.wait_for(finished.wait(), 20)
        writer.join(5)
        assert reader.stop()

    asyncio.run(main())
    assert sink.data == payload
    assert sink.done_calls == 1
    assert sink.done_after == len(sink.chunks)  # nothing was delivered after the end


def test_a_loop_that_does_not_take_holds_the_writer_back(pipe: Pipe) -> None:
    """The loop never runs here: the thread parks at most HANDOFF_MAX (+ one batch) and then
    stops reading, so the writer meets a full pipe. Once the loop takes, everything flows."""
    r, w = pipe.r, pipe.w
    os.set_blocking(w, False)
    payload = _payload(HANDOFF_MAX * 2)
    loop = asyncio.new_event_loop()
    sink = Sink()
    reader = PtyReader(r, loop, sink.deliver, sink.done)
    try:
        sent = 0
        poller = select.poll()
        poller.register(w, select.POLLOUT)
        while sent < len(payload):
            try:
                sent += os.write(w, payload[sent : sent + 65536])
            except BlockingIOError:
                if not poller.poll(1000):  # no room for a second: the reader stopped
                    break
        bound = HANDOFF_MAX + READ_BATCH * READ_SIZE + 1024 * 1024  # + what the pipe holds
        assert sent < len(payload)
        assert sent <= bound
        assert reader.queued <= HANDOFF_MAX + READ_BATCH * READ_SIZE

        # Now run the loop: it takes, the thread reads on, the writer finishes.
        os.set_blocking(w, True)
        rest = payload[sent:]
        writer = threading.Thread(target=lambda: (_write_all(w, rest), pipe.close(w)))

        async def drain() -> None:
            finished = asyncio.Event()
            reader.done = lambda: (sink.done(), finished.set())  # type: ignore[method-assign]
            writer.start()
            await asyncio.wait_for(finished.wait(), 20)

        loop.run_until_complete(drain())
        writer.join(5)
        assert reader.stop()
    finally:
        loop.close()
    assert sink.data == payload
    assert sink.done_calls == 1


def test_stop_delivers_what_the_thread_had_read(pipe: Pipe) -> None:
    r, w = pipe.r, pipe.w
    payload = _payload(200_000)
    loop = asyncio.new_event_loop()  # never run: only stop() can hand the bytes over
    sink = Sink()
    try:
        reader = PtyReader(r, loop, sink.deliver, sink.done)
        _write_all(w, payload)
        wait_until(lambda: reader.queued == len(payload), what="the thread read everything")
        assert sink.chunks == []
        assert reader.stop()
        assert sink.data == payload
        assert sink.done_calls == 0  # the pipe is still open: no end was seen
    finally:
        loop.close()


def test_a_burst_pauses_screen_feeding_even_when_output_log_cannot_be_written() -> None:
    """Burst detection counts what the pump took in, not the log (a failed log stops
    growing): the screen is fed once output calms down, never during the burst."""
    loop = asyncio.new_event_loop()
    try:
        p = Pump(loop, -1, 80, 24, lambda: 0.0)
        chunk = b"x" * 100 + b"\r\n"
        for _ in range(pump_mod.BURST_BYTES // len(chunk) + 10):
            p.ingest(chunk)
        p.stop_feeding()
        p.feed_tick()  # a burst since the last tick: nothing emulated
        assert p.emu.pending
        p.stop_feeding()
        p.ingest(b"calm\r\n")
        p.stop_feeding()
        p.feed_tick()  # quiet since: the screen catches up
        assert not p.emu.pending
        assert "calm" in p.render("plain", True)["text"]
    finally:
        loop.close()


def test_a_trickle_is_delivered_at_once_and_only_a_burst_is_paced(pipe: Pipe) -> None:
    """Keystroke echo must not wait for a pacing timer; a burst is taken on the timer until
    the output calms down again."""
    r, w = pipe.r, pipe.w
    loop = asyncio.new_event_loop()
    sink = Sink()
    arrived = asyncio.Event()

    def deliver(data: bytes) -> None:
        sink.deliver(data)
        arrived.set()

    reader = PtyReader(r, loop, deliver, sink.done)

    def one_turn() -> None:  # run the loop just long enough for callbacks already queued
        loop.run_until_complete(asyncio.sleep(0))

    try:
        _write_all(w, b"k")
        wait_until(lambda: reader.queued == 1, what="the echo was read")
        one_turn()
        assert sink.data == b"k"
        assert reader.timer is None  # nothing paced: the next byte goes at once too

        burst = _payload(pump_mod.PACE_BYTES * 4)
        _write_all(w, burst)
        wait_until(lambda: reader.queued == len(burst), what="the burst was read")
        one_turn()
        assert sink.data == b"k" + burst
        assert reader.timer is not None  # a burst: the next take waits for the timer

        _write_all(w, b"after")
        wait_until(lambda: reader.queued == 5, what="the tail was read")
        arrived.clear()
        one_turn()
        assert sink.data == b"k" + burst  # held for the timer, not delivered at once
        loop.run_until_complete(asyncio.wait_for(arrived.wait(), 5))
        assert sink.data == b"k" + burst + b"after"
        assert reader.timer is None  # calm again: back to at once
        assert reader.stop()
    finally:
        loop.close()
