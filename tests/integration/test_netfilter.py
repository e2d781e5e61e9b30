"""A box's proxy ports handed to the home's filter (sandbox/netjoin.py -> sandbox/netfilter.py)
over a real unix socket, with real TCP listeners and upstream servers on loopback: the filter
serves the box's connections on them itself, with the same rules as on its own socket, each
as that box whatever credentials it shows; a
hand-over from no registered box, or of anything but listening TCP sockets on the ports named,
is refused and nothing of it is kept; a box's ports stop answering once it is dropped."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from looop.home.clock import SystemClock
from looop.sandbox import netjoin
from tests.integration.test_netproxy import Proxy, Upstream, _all, _auth, two_boxes

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[Proxy, Upstream, Upstream]]:
    with two_boxes(tmp_path) as got:
        yield got


def _free_ports(n: int) -> list[int]:
    socks = [socket.create_server(("127.0.0.1", 0)) for _ in range(n)]
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _get(port: int, target: str, auth: str) -> bytes:
    """An HTTP request through the box's proxy port, as a client in the box sends it."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(
            f"GET {target} HTTP/1.1\r\nHost: {target[7:].split('/')[0]}\r\n{auth}\r\n\r\n".encode()
        )
        return _all(s)


def _socks(port: int, user: str, token: str, dest: int) -> bytes:
    """A SOCKS5 CONNECT to 127.0.0.1:dest through the box's SOCKS port, then a PING."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(b"\x05\x01\x02")
        assert s.recv(2) == b"\x05\x02"
        s.sendall(bytes([1, len(user)]) + user.encode() + bytes([len(token)]) + token.encode())
        assert s.recv(2) == b"\x01\x00"
        s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton("127.0.0.1") + dest.to_bytes(2, "big"))
        reply = s.recv(10)
        if reply[1] != 0:
            return reply
        s.sendall(b"PING")
        return _all(s)


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    except ConnectionResetError:
        return False  # closed while this connection waited in its backlog: ask again
    return False


def _hand(path: str, line: bytes, fds: list[int]) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(20)
        s.connect(path)
        s.sendall(netjoin.HELLO)
        socket.send_fds(s, [line], fds)
        return _all(s).decode().strip()


def test_the_filter_serves_a_box_on_the_ports_it_handed_over(
    lab: tuple[Proxy, Upstream, Upstream],
) -> None:
    f, a, b = lab
    http, socks = _free_ports(2)
    assert netjoin.join(f.path, "srt.box-a", "tok-a", [http, socks]) is None
    auth = _auth("srt.box-a", "tok-a")
    # the box's own copies are closed: the filter alone holds the ports now, and serves them
    assert _get(http, f"http://127.0.0.1:{a.port}/", auth).endswith(b"from-a")
    assert b"403 Forbidden" in _get(http, f"http://127.0.0.1:{b.port}/", auth)
    assert _socks(socks, "srt.box-a", "tok-a", a.port) == b"from-a"
    assert _socks(socks, "srt.box-a", "tok-a", b.port)[1] == 2  # not allowed by ruleset
    assert b.got == []
    # the port is the box's: a connection on it needs the box's credentials, and no other
    # box's (box b's own domain, with box b's credentials, on box a's port)
    assert b"407" in _get(http, f"http://127.0.0.1:{a.port}/", "X-No: auth")
    assert b"407" in _get(http, f"http://localhost:{b.port}/", _auth("srt.box-b", "tok-b"))
    # a hand-over's first byte on a box's port is no hand-over: an HTTP client's bad request
    with socket.create_connection(("127.0.0.1", http), timeout=20) as s:
        s.sendall(netjoin.HELLO + b"srt.box-b tok-b 1\n\r\n\r\n")
        assert _all(s).startswith(b"HTTP/1.1 400")


def test_a_dropped_box_s_ports_stop_answering(lab: tuple[Proxy, Upstream, Upstream]) -> None:
    f, a, _ = lab
    clock = SystemClock()
    for _ in range(20):  # connections arriving as the box is dropped, round after round
        (http,) = _free_ports(1)
        assert netjoin.join(f.path, "srt.box-a", "tok-a", [http]) is None
        assert f.ports.users() == ["srt.box-a"]
        early = [socket.create_connection(("127.0.0.1", http), timeout=5) for _ in range(3)]
        f.ports.drop("srt.box-a")
        deadline = clock.monotonic() + 20
        while not _refused(http):  # the accepting thread closes it on its next wake-up
            assert clock.monotonic() < deadline, "the dropped box's port still answers"
        for s in early:
            s.close()
        assert f.ports.users() == []
    # and the filter still serves the boxes it holds
    (http,) = _free_ports(1)
    assert netjoin.join(f.path, "srt.box-a", "tok-a", [http]) is None
    auth = _auth("srt.box-a", "tok-a")
    assert _get(http, f"http://127.0.0.1:{a.port}/", auth).endswith(b"from-a")


def test_a_hand_over_is_refused_unless_a_box_hands_its_listening_ports(
    lab: tuple[Proxy, Upstream, Upstream],
) -> None:
    f, _, _ = lab
    (port,) = _free_ports(1)
    listening = netjoin.listen(port)
    unbound = socket.socket()
    r, w = os.pipe()
    sent = {os.fstat(fd).st_ino for fd in (listening.fileno(), unbound.fileno(), r)}
    try:
        cases = {
            b"srt.box-a wrong 1\n": [listening.fileno()],  # another token
            b"srt.nobody tok-a 1\n": [listening.fileno()],  # no such box
            b"srt.box-a tok-a %d %d\n" % (port, port + 1): [listening.fileno()],  # one short
            b"srt.box-a tok-a %d\n" % (port + 1): [listening.fileno()],  # not that port
            b"srt.box-a tok-a 0\n": [unbound.fileno()],  # not listening
            b"srt.box-a tok-a 1\n": [r],  # a pipe
            b"srt.box-a tok-a\n": [],  # no port
            b"\xff\xfe garbage\n": [listening.fileno()],
        }
        for line, fds in cases.items():
            said = _hand(f.path, line, fds)
            assert said and said != "ok", (line, said)
        assert f.ports.users() == []
    finally:
        listening.close()
        unbound.close()
        os.close(r)
        os.close(w)
    assert _refused(port)  # the filter kept no copy of a refused port
    assert not sent & _open_inodes()  # nor any descriptor it was sent


def _open_inodes() -> set[int]:
    """The inodes of this process's open pipes and sockets (the filter runs in it here)."""
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith(("pipe:[", "socket:[")):
            out.add(int(link[link.index("[") + 1 : -1]))
    return out


def test_join_says_why_when_the_filter_is_not_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (port,) = _free_ports(1)
    assert netjoin.main([str(tmp_path / "none.sock"), "srt.box-a", "tok-a", str(port)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("looop: the box's network filter did not take its ports: ")
    assert err.count("\n") == 1
    assert _refused(port)  # it gave its port up
    assert netjoin.main(["x"]) == 2
