"""A box's door at the filter (sandbox/netproxy.py `_knock`, sandbox/door.py), on a real unix
socket: a worker's box is answered as the worker it was registered for, whatever its request says; a
box with no door, a tunnel to the door, a request that is not one POST of bounded JSON are each
refused in one line, and the request reaches the answerer only when it is whole."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from looop.sandbox import netfilter, netproxy
from tests.helpers import stop_serving
from tests.integration.test_netproxy import _all, _auth

pytestmark = pytest.mark.timeout(60)


class DoorProxy:
    """The filter's serve loop with a door that records what it was asked."""

    def __init__(self, tmp_path: Path) -> None:
        self.path = str(tmp_path / "net.sock")
        self.boxes = netproxy.Boxes(str(tmp_path / "boxes"))
        self.asked: list[tuple[str, bytes]] = []
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(16)
        self.ports = netfilter.Ports()

        def door(worker: str, body: bytes) -> tuple[int, bytes]:
            self.asked.append((worker, body))
            return 200, json.dumps({"out": f"as {worker}\n", "err": "", "code": 0}).encode()

        args = (self.listener, self.boxes, None, netfilter.MAX_OPEN, self.ports, door)
        self.thread = threading.Thread(target=netfilter.serve, args=args, daemon=True)
        self.thread.start()

    def send(self, raw: bytes) -> bytes:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(20)
            s.connect(self.path)
            s.sendall(raw)
            s.shutdown(socket.SHUT_WR)
            return _all(s)

    def close(self) -> None:
        stop_serving(self.listener, self.thread, self.ports.close)


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[DoorProxy]:
    p = DoorProxy(tmp_path)
    p.boxes.add("srt.w1", netproxy.digest("tok-1"), [], [], worker="w1")
    p.boxes.add("srt.tick", netproxy.digest("tok-t"), ["example.com"], [])  # a beat's box: no door
    try:
        yield p
    finally:
        p.close()


def _post(auth: str, body: bytes, method: str = "POST", length: str | None = None) -> bytes:
    size = str(len(body)) if length is None else length
    head = f"{method} http://looop.door/api/v1/contract HTTP/1.1\r\nHost: looop.door\r\n{auth}\r\n"
    head += f"Content-Length: {size}\r\n" if size else ""
    return head.encode() + b"\r\n" + body


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def test_a_box_is_answered_as_its_own_worker_whatever_it_says(proxy: DoorProxy) -> None:
    body = json.dumps({"v": 1, "key": "k" * 12, "worker": "other", "argv": ["told"]}).encode()
    got = proxy.send(_post(_auth("srt.w1", "tok-1"), body))
    assert _status(got) == 200 and b"as w1" in got
    assert proxy.asked == [("w1", body)]  # the worker is the box's: the door checks the rest


@pytest.mark.parametrize(
    ("case", "want"),
    [
        ("no credentials", 407),
        ("another box's token", 407),
        ("a box with no door", 403),
        ("GET", 405),
        ("no length", 411),
        ("over the bound", 413),
    ],
)
def test_what_is_not_one_whole_post_from_a_worker_box_never_reaches_the_door(
    proxy: DoorProxy, case: str, want: int
) -> None:
    body = b'{"v": 1}'
    mine = _auth("srt.w1", "tok-1")
    raw = {
        "no credentials": _post("X-None: 1", body),
        "another box's token": _post(_auth("srt.w1", "tok-t"), body),
        "a box with no door": _post(_auth("srt.tick", "tok-t"), body),
        "GET": _post(mine, body, method="GET"),
        "no length": _post(mine, body, length=""),
        "over the bound": _post(mine, b"", length=str(netproxy.DOOR_MAX + 1)),
    }[case]
    got = proxy.send(raw)
    assert _status(got) == want, got
    assert proxy.asked == []


def test_a_tunnel_to_the_door_is_refused(proxy: DoorProxy) -> None:
    auth = _auth("srt.tick", "tok-t")  # allowed everywhere, and still not through a tunnel
    got = proxy.send(
        f"CONNECT looop.door:80 HTTP/1.1\r\nHost: looop.door\r\n{auth}\r\n\r\n".encode()
    )
    assert _status(got) == 403 and proxy.asked == []


def test_a_request_cut_before_its_length_reaches_nothing(proxy: DoorProxy) -> None:
    got = proxy.send(_post(_auth("srt.w1", "tok-1"), b'{"v": 1', length="100"))
    assert got == b"" and proxy.asked == []
