"""looop's own filtering proxy (sandbox/netproxy.py) on a real unix socket, with real upstream
servers on loopback: two boxes with different lists share it and each reaches only its own;
no credentials, a wrong token, a host off the list, a Host header naming another site are
each refused the way srt's proxy refuses them, over HTTP CONNECT, HTTP forwarding and SOCKS5."""

from __future__ import annotations

import base64
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from looop.sandbox import netfilter, netproxy
from tests.helpers import stop_serving

pytestmark = pytest.mark.timeout(60)


class Upstream:
    """A loopback server that records what it was sent and answers a fixed line."""

    def __init__(self, answer: bytes) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.answer = answer
        self.got: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def close(self) -> None:
        stop_serving(self.sock, self.thread)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(10)
                data = b""
                try:
                    while b"\r\n\r\n" not in data and b"PING" not in data:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                except OSError:
                    pass
                self.got.append(data)
                conn.sendall(self.answer)


class Proxy:
    def __init__(self, tmp_path: Path) -> None:
        self.path = str(tmp_path / "net.sock")
        self.boxes = netproxy.Boxes(str(tmp_path / "boxes"))
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(16)
        self.ports = netfilter.Ports()  # the boxes' own ports (tests/integration/test_netfilter.py)
        args = (self.listener, self.boxes, None, netfilter.MAX_OPEN, self.ports)
        self.thread = threading.Thread(target=netfilter.serve, args=args, daemon=True)
        self.thread.start()

    def close(self) -> None:
        stop_serving(self.listener, self.thread, self.ports.close)

    def client(self) -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(20)
        s.connect(self.path)
        return s


@contextmanager
def two_boxes(tmp_path: Path) -> Iterator[tuple[Proxy, Upstream, Upstream]]:
    """A filter on its socket, two upstreams, box a allowed the first, box b the second."""
    a, b = Upstream(b"from-a"), Upstream(b"from-b")
    proxy = Proxy(tmp_path)
    proxy.boxes.add("srt.box-a", netproxy.digest("tok-a"), [f"127.0.0.1:{a.port}"], [])
    proxy.boxes.add("srt.box-b", netproxy.digest("tok-b"), [f"localhost:{b.port}"], [])
    try:
        yield proxy, a, b
    finally:
        proxy.close()
        a.close()
        b.close()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[Proxy, Upstream, Upstream]]:
    with two_boxes(tmp_path) as got:
        yield got


def _auth(user: str, token: str) -> str:
    return "Proxy-Authorization: Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()


def _all(s: socket.socket) -> bytes:
    out = b""
    while True:
        try:
            got = s.recv(4096)
        except OSError:
            break
        if not got:
            break
        out += got
    return out


def _connect(proxy: Proxy, target: str, auth: str | None) -> bytes:
    with proxy.client() as s:
        s.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n".encode())
        s.sendall(((auth + "\r\n") if auth else "").encode() + b"\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            got = s.recv(4096)
            if not got:
                return head
            head += got
        if head.startswith(b"HTTP/1.1 200"):
            s.sendall(b"PING")
            return head + _all(s)
        return head + _all(s)


def test_each_box_reaches_only_its_own_destination_over_connect(
    lab: tuple[Proxy, Upstream, Upstream],
) -> None:
    proxy, a, b = lab
    got = _connect(proxy, f"127.0.0.1:{a.port}", _auth("srt.box-a", "tok-a"))
    assert got.startswith(b"HTTP/1.1 200") and got.endswith(b"from-a")
    assert a.got == [b"PING"]
    # box a, b's port: refused as srt refuses, and b's server never hears of it
    denied = _connect(proxy, f"127.0.0.1:{b.port}", _auth("srt.box-a", "tok-a"))
    assert denied.startswith(b"HTTP/1.1 403") and b"X-Proxy-Error: blocked-by-allowlist" in denied
    assert denied.endswith(b"Connection blocked by network allowlist")
    # box b's list names localhost: a loopback name reaches loopback, by any spelling of it
    got = _connect(proxy, f"LOCALHOST.:{b.port}", _auth("srt.box-b", "tok-b"))
    assert got.endswith(b"from-b")
    assert b.got == [b"PING"]


def test_no_credentials_or_another_boxes_token_reach_nothing(
    lab: tuple[Proxy, Upstream, Upstream],
) -> None:
    proxy, a, _ = lab
    for auth in (
        None,
        _auth("srt.box-a", "tok-b"),
        _auth("srt.box-c", "tok-a"),
        "Proxy-Authorization: Basic !!",
    ):
        got = _connect(proxy, f"127.0.0.1:{a.port}", auth)
        assert got.startswith(b"HTTP/1.1 407"), (auth, got)
    assert a.got == []
    proxy.boxes.remove("srt.box-a")  # a box that ended: its credentials open nothing more
    assert _connect(proxy, f"127.0.0.1:{a.port}", _auth("srt.box-a", "tok-a")).startswith(
        b"HTTP/1.1 407"
    )


def test_a_forwarded_request_goes_out_in_origin_form_without_the_boxes_credentials(
    lab: tuple[Proxy, Upstream, Upstream],
) -> None:
    proxy, a, b = lab
    with proxy.client() as s:
        s.sendall(
            f"GET http://127.0.0.1:{a.port}/x?y=1 HTTP/1.1\r\nHost: 127.0.0.1:{a.port}\r\n"
            f"{_auth('srt.box-a', 'tok-a')}\r\nProxy-Connection: keep-alive\r\n\r\n".encode()
        )
        assert _all(s) == b"from-a"
    [sent] = a.got
    assert sent.startswith(b"GET /x?y=1 HTTP/1.1\r\n")
    assert b"Proxy-Authorization" not in sent and b"tok-a" not in sent
    assert b"Connection: close" in sent
    # a Host header naming another site than the target: refused before anything is sent
    with proxy.client() as s:
        s.sendall(
            f"GET http://127.0.0.1:{a.port}/ HTTP/1.1\r\nHost: evil.example\r\n"
            f"{_auth('srt.box-a', 'tok-a')}\r\n\r\n".encode()
        )
        assert _all(s).startswith(b"HTTP/1.1 403")
    assert len(a.got) == 1 and b.got == []


def _socks(proxy: Proxy, user: bytes, token: bytes, host: bytes, port: int) -> tuple[int, bytes]:
    with proxy.client() as s:
        s.sendall(b"\x05\x01\x02")
        assert s.recv(2) == b"\x05\x02"
        s.sendall(bytes([1, len(user)]) + user + bytes([len(token)]) + token)
        if s.recv(2) != b"\x01\x00":
            return -1, b""
        s.sendall(b"\x05\x01\x00\x03" + bytes([len(host)]) + host + struct.pack(">H", port))
        reply = s.recv(10)
        if reply[1] == 0:
            s.sendall(b"PING")
            return 0, _all(s)
        return reply[1], b""


def test_socks5_clients_get_the_same_verdicts(lab: tuple[Proxy, Upstream, Upstream]) -> None:
    proxy, a, b = lab
    assert _socks(proxy, b"srt.box-a", b"tok-a", b"127.1", a.port) == (0, b"from-a")
    assert _socks(proxy, b"srt.box-a", b"tok-a", b"127.0.0.1", b.port) == (2, b"")
    assert _socks(proxy, b"srt.box-a", b"wrong", b"127.0.0.1", a.port) == (-1, b"")
    with proxy.client() as s:  # no username/password method offered: no way in
        s.sendall(b"\x05\x01\x00")
        assert s.recv(2) == b"\x05\xff"
    assert a.got == [b"PING"] and b.got == []


def test_an_allowed_name_pointed_at_a_forbidden_address_reaches_nothing(
    tmp_path: Path,
) -> None:
    box = netproxy.Box("t", netproxy.netrules.parse_lists(["api.example.com"]), "")
    for address in ("169.254.169.254", "127.0.0.1", "::1"):
        with pytest.raises(netproxy.Refused, match="resolved to"):
            netproxy.dial(box, "api.example.com", 443, lambda h, p, a=address: [a], lambda: [])


def test_connections_past_the_bound_are_closed_and_the_rest_still_served(tmp_path: Path) -> None:
    up = Upstream(b"ok")
    boxes = netproxy.Boxes(str(tmp_path / "boxes"))
    boxes.add("u", netproxy.digest("t"), [f"127.0.0.1:{up.port}"], [])
    path = str(tmp_path / "n.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    ports = netfilter.Ports()
    server = threading.Thread(target=netfilter.serve, args=(listener, boxes, None, 2, ports))
    server.start()
    held = []
    for _ in range(2):  # two idle clients take both slots (they say nothing)
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(path)
        held.append(c)
    extra = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    extra.settimeout(10)
    extra.connect(path)
    assert extra.recv(10) == b""  # closed at once, not left hanging
    held.pop().close()  # a slot comes free: served again
    got = b""
    for _ in range(200):
        proxy = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        proxy.settimeout(10)
        try:
            proxy.connect(path)
            line = f"CONNECT 127.0.0.1:{up.port} HTTP/1.1\r\n{_auth('u', 't')}\r\n\r\n"
            proxy.sendall(line.encode())
            got = proxy.recv(100)
        except OSError:
            got = b""
        proxy.close()
        if got:
            break
        # the freed slot comes back once its handler has seen the hang-up: nothing signals it
        threading.Event().wait(0.01)
    assert got.startswith(b"HTTP/1.1 200")
    for c in held:
        c.close()
    stop_serving(listener, server, ports.close)
    up.close()
