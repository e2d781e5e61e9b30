"""The supervisor's own loop (sessions/evloop.py): timers, fds, signals and the awaitables the
lifecycle is written with. Real pipes and a real signal to this process; no mocks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from looop.sessions import evloop as ev

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
def loop() -> Iterator[ev.Loop]:
    lp = ev.Loop()
    yield lp
    lp.close()


def test_timers_fire_in_time_order_and_a_cancelled_one_never(loop: ev.Loop) -> None:
    order: list[str] = []
    loop.call_later(0.03, order.append, "late")
    h = loop.call_later(0.01, order.append, "cancelled")
    loop.call_later(0.0, order.append, "first")
    loop.call_later(0.02, order.append, "middle")
    loop.call_soon(order.append, "soon")
    h.cancel()
    t0 = loop.time()
    loop.run_for(0.06)
    assert order == ["soon", "first", "middle", "late"]
    assert loop.time() - t0 >= 0.06


def test_equal_deadlines_keep_the_order_they_were_asked_in(loop: ev.Loop) -> None:
    order: list[int] = []
    for i in range(20):
        loop.call_later(0.005, order.append, i)
    loop.run_for(0.02)
    assert order == list(range(20))


def test_a_callback_scheduled_by_a_callback_runs_on_the_next_turn(loop: ev.Loop) -> None:
    seen: list[str] = []

    def first() -> None:
        seen.append("a")
        loop.call_soon(seen.append, "c")

    loop.call_soon(first)
    loop.call_soon(seen.append, "b")
    loop.run_for(0.01)
    assert seen == ["a", "b", "c"]


def test_reader_and_writer_on_a_pipe(loop: ev.Loop) -> None:
    r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        got = bytearray()
        finished = loop.future()
        wrote = [0]

        def readable() -> None:
            data = os.read(r, 65536)
            if not data:
                loop.remove_reader(r)
                finished.set_result(bytes(got))
                return
            got.extend(data)

        payload = bytes(range(256)) * 2048  # 512 KiB: more than a pipe holds

        def writable() -> None:
            try:
                wrote[0] += os.write(w, payload[wrote[0] : wrote[0] + 65536])
            except BlockingIOError:
                return
            if wrote[0] == len(payload):
                loop.remove_writer(w)
                os.close(w)

        loop.add_reader(r, readable)
        loop.add_writer(w, writable)
        loop.run_until(finished)
        assert finished.result() == payload
        assert not loop.remove_reader(r) and not loop.remove_writer(w)
    finally:
        os.close(r)


def test_one_fd_can_have_a_reader_and_a_writer_and_lose_either(loop: ev.Loop) -> None:
    s1, s2 = socket.socketpair()
    try:
        s1.setblocking(False)
        calls: list[str] = []
        loop.add_reader(s1.fileno(), lambda: calls.append("r"))
        loop.add_writer(s1.fileno(), lambda: calls.append("w"))
        loop.run_for(0.0)
        assert calls == ["w"]  # writable at once, nothing to read yet
        loop.remove_writer(s1.fileno())
        calls.clear()
        s2.send(b"x")
        loop.run_for(0.01)
        assert "r" in calls and "w" not in calls
        loop.remove_reader(s1.fileno())
        calls.clear()
        loop.run_for(0.01)
        assert calls == []
    finally:
        s1.close()
        s2.close()


def test_a_real_signal_runs_its_handler_on_the_loop_not_in_the_handler(loop: ev.Loop) -> None:
    got = loop.future()
    inside: list[bool] = []

    def on_usr1() -> None:
        inside.append(True)
        got.set_result("usr1")

    loop.add_signal_handler(signal.SIGUSR1, on_usr1)
    loop.call_later(0.01, os.kill, os.getpid(), signal.SIGUSR1)
    loop.call_later(5, got.set_result, "timeout")
    loop.run_until(got)
    assert got.result() == "usr1" and inside == [True]


def test_close_restores_the_signal_disposition() -> None:
    before = signal.getsignal(signal.SIGUSR2)
    lp = ev.Loop()
    lp.add_signal_handler(signal.SIGUSR2, lambda: None)
    assert signal.getsignal(signal.SIGUSR2) is not before
    lp.close()
    assert signal.getsignal(signal.SIGUSR2) is before


@pytest.mark.process
def test_sigchld_from_a_real_child_reaches_the_loop(loop: ev.Loop) -> None:
    got = loop.future()
    loop.add_signal_handler(
        signal.SIGCHLD, lambda: got.set_result(True) if not got.done() else None
    )
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    loop.call_later(10, lambda: got.set_result(False) if not got.done() else None)
    loop.run_until(got)
    proc.wait()
    assert got.result() is True


def test_a_failing_callback_is_reported_and_the_loop_goes_on(loop: ev.Loop) -> None:
    reports: list[str] = []
    loop.on_error = lambda what, e: reports.append(f"{what}: {e}")

    def boom() -> None:
        raise ValueError("bad")

    loop.call_soon(boom)
    after = loop.future()
    loop.call_soon(after.set_result, 1)
    loop.run_until(after)
    assert len(reports) == 1 and "bad" in reports[0]


def test_a_task_awaits_futures_in_turn_and_returns(loop: ev.Loop) -> None:
    async def work() -> int:
        await ev.sleep(loop, 0.01)
        f = loop.future()
        loop.call_later(0.01, f.set_result, 41)
        return int(await f) + 1

    t = loop.task(work())
    loop.run_until(t)
    assert t.result() == 42


def test_an_exception_in_a_task_is_its_result(loop: ev.Loop) -> None:
    async def work() -> None:
        await ev.sleep(loop, 0)
        raise KeyError("nope")

    t = loop.task(work())
    loop.run_until(t)
    with pytest.raises(KeyError):
        t.result()


def test_cancel_throws_into_the_task_and_leaves_what_it_awaited_alone(loop: ev.Loop) -> None:
    shared = loop.future()
    cleaned: list[str] = []

    async def waiter() -> None:
        try:
            await shared
        finally:
            cleaned.append("finally")

    t = loop.task(waiter())
    loop.run_for(0.0)
    assert t.cancel()
    loop.run_until(t)
    assert t.cancelled() and cleaned == ["finally"]
    assert not shared.done()  # another waiter may still need it
    shared.set_result(1)
    loop.run_for(0.0)


def test_within_says_whether_the_wait_ended_in_time(loop: ev.Loop) -> None:
    fast, slow = loop.future(), loop.future()
    loop.call_later(0.01, fast.set_result, None)
    a = ev.within(loop, fast, 2)
    b = ev.within(loop, [fast, slow], 0.05)
    loop.run_until(b)
    loop.run_until(a)
    assert a.result() is True and b.result() is False
    assert not slow.done()


def test_event_wakes_every_waiter(loop: ev.Loop) -> None:
    e = ev.Event(loop)
    woke: list[int] = []

    async def w(i: int) -> None:
        await e.wait()
        woke.append(i)

    tasks = [loop.task(w(i)) for i in range(3)]
    loop.run_for(0.0)
    assert woke == []
    e.set()
    for t in tasks:
        loop.run_until(t)
    assert sorted(woke) == [0, 1, 2] and e.is_set()


def test_lock_lets_one_holder_in_at_a_time_and_in_order(loop: ev.Loop) -> None:
    lock = ev.Lock(loop)
    trace: list[str] = []

    async def user(name: str) -> None:
        async with lock:
            trace.append(f"in {name}")
            await ev.sleep(loop, 0.01)
            trace.append(f"out {name}")

    tasks = [loop.task(user(n)) for n in "abc"]
    for t in tasks:
        loop.run_until(t)
    assert trace == ["in a", "out a", "in b", "out b", "in c", "out c"]
    assert not lock.locked


def test_a_cancelled_waiter_never_keeps_the_lock(loop: ev.Loop) -> None:
    lock = ev.Lock(loop)
    trace: list[str] = []

    async def user(name: str, hold: float) -> None:
        async with lock:
            trace.append(name)
            await ev.sleep(loop, hold)

    a = loop.task(user("a", 0.02))
    b = loop.task(user("b", 0))
    c = loop.task(user("c", 0))
    loop.run_for(0.005)
    b.cancel()
    loop.run_until(c)
    assert trace == ["a", "c"] and b.cancelled() and a.done() and not lock.locked
