"""A control connection (`controlconn.Conn`) on the supervisor's loop over a real socketpair: the
request line's limit and deadline, EOF, frames, and writes to a peer that does not read."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from looop.sessions import evloop as ev
from looop.sessions.controlconn import HIGH_WATER, Closed, Conn

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
def loop() -> Iterator[ev.Loop]:
    lp = ev.Loop()
    yield lp
    lp.close()


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    a.setblocking(False)
    yield a, b
    for s in (a, b):
        s.close()


def _conn(loop: ev.Loop, sock: socket.socket) -> Conn:
    return Conn(loop, os.dup(sock.fileno()))


def _run(loop: ev.Loop, coro: object) -> ev.Task:
    task = loop.task(coro)  # type: ignore[arg-type]
    loop.run_until(task)
    return task


def test_a_line_arrives_in_pieces_and_the_rest_stays_buffered(
    loop: ev.Loop, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = pair
    conn = _conn(loop, a)
    b.sendall(b'{"op": ')
    loop.call_later(0.01, b.sendall, b'"status"}\n\x01\x00\x00\x00\x02hi')
    task = _run(loop, conn.readline(100, 5))
    assert task.result() == b'{"op": "status"}\n'
    assert _run(loop, conn.readexactly(5)).result() == b"\x01\x00\x00\x00\x02"
    assert _run(loop, conn.readexactly(2)).result() == b"hi"
    conn.abort()


def test_a_line_past_the_limit_is_refused(
    loop: ev.Loop, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = pair
    conn = _conn(loop, a)
    b.sendall(b"x" * 300)
    task = _run(loop, conn.readline(100, 5))
    with pytest.raises(ValueError):
        task.result()
    conn.abort()


def test_a_silent_peer_runs_into_the_deadline_and_eof_ends_a_partial_line(
    loop: ev.Loop, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = pair
    conn = _conn(loop, a)
    t0 = loop.time()
    task = _run(loop, conn.readline(100, 0.05))
    with pytest.raises(TimeoutError):
        task.result()
    assert loop.time() - t0 >= 0.05
    b.sendall(b"no newline")
    b.shutdown(socket.SHUT_WR)
    assert _run(loop, conn.readline(100, 5)).result() == b"no newline"
    with pytest.raises(Closed):
        _run(loop, conn.readexactly(1)).result()
    conn.abort()


def test_a_peer_that_does_not_read_holds_the_drain_until_its_deadline(
    loop: ev.Loop, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = pair
    conn = _conn(loop, a)
    conn.write(b"y" * (HIGH_WATER * 64))  # far more than the socket buffers take
    assert len(conn.out) > HIGH_WATER
    task = _run(loop, conn.drain(0.05))
    with pytest.raises(TimeoutError):
        task.result()
    # Once the peer reads, the rest goes out and a close after it ends the connection.
    got = bytearray()
    b.setblocking(False)

    def take() -> None:
        try:
            while chunk := b.recv(1 << 20):
                got.extend(chunk)
        except BlockingIOError:
            pass

    loop.add_reader(b.fileno(), take)
    conn.close()
    while not conn.closed:
        loop.run_for(0.01)
    loop.run_for(0.02)
    loop.remove_reader(b.fileno())
    assert bytes(got) == b"y" * (HIGH_WATER * 64)


def test_writing_to_a_peer_that_left_is_a_lost_connection(
    loop: ev.Loop, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = pair
    conn = _conn(loop, a)
    b.close()
    conn.write(b"reply\n")
    conn.write(b"more\n")  # ignored: the connection is gone
    assert conn.lost and conn.closed
    with pytest.raises(Closed):
        _run(loop, conn.drain(1)).result()
