"""A sandboxed worker's way home on an SSH host (remote/ssh/boxed.py): its `looop` puts a
request in its drop box, the satellite's bridge carries it over the relay socket and puts the
answer back. Here the relay is a small unix-socket server standing in for the home (the lab
test, tests/hosts/test_sandboxed_host.py, runs the real one across SSH): the bridge speaks as
the worker whose folder it is, and a symlink or a FIFO the worker plants in its folder is
never followed or opened, and a folder is passed over."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from looop.remote.callhome import PENDING
from looop.remote.shim import _dropped
from looop.remote.ssh import boxed
from tests.helpers import stop_serving

pytestmark = [
    pytest.mark.process,
    pytest.mark.timeout(60),
    # a bridge thread that dies on what a worker planted is a failure, not a warning
    pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning"),
]


class Home:
    """A relay stand-in: answers each request with what it was sent, and keeps them."""

    def __init__(self, path: str) -> None:
        self.seen: list[dict[str, object]] = []
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            buf = b""
            while True:
                got = conn.recv(65536)
                if not got:
                    break
                buf += got
            req = json.loads(buf)
            self.seen.append(req)
            ans = {"out": f"as {req['worker']}: {' '.join(req['argv'])}\n", "err": "", "code": 0}
            conn.sendall(json.dumps(ans).encode())
            conn.close()

    def close(self) -> None:
        stop_serving(self.srv, self.thread)


@pytest.fixture
def sat(tmp_path: Path) -> Iterator[tuple[Path, Home, threading.Thread]]:
    root = tmp_path / "sat"
    root.mkdir()
    home = Home(str(tmp_path / "relay.sock"))
    bridge = threading.Thread(
        target=boxed.serve, args=(root, str(tmp_path / "relay.sock"), 1.0), daemon=True
    )
    bridge.start()
    yield root, home, bridge
    bridge.join(10)
    home.close()


def _req(worker: str, key: str, verb: str) -> bytes:
    return json.dumps(
        {"v": 1, "key": key, "worker": worker, "argv": [verb], "stdin": None}
    ).encode()


def test_a_request_is_carried_home_as_the_worker_whose_box_it_is(
    sat: tuple[Path, Home, threading.Thread],
) -> None:
    root, home, bridge = sat
    box = boxed.callhome_dir(root, "w1")
    box.mkdir(parents=True)
    # the request names another worker: the bridge speaks for the box's owner
    got = _dropped(str(box), "key0000001", _req("someone-else", "key0000001", "told"))
    assert got is not PENDING and isinstance(got, dict)
    assert got["out"] == "as w1: told\n"
    assert [r["worker"] for r in home.seen] == ["w1"]
    assert sorted(os.listdir(box)) == []  # request, claim and answer all gone
    bridge.join(10)
    assert not bridge.is_alive()  # no sandboxed worker lives: the bridge ended by itself


def test_a_symlink_a_fifo_or_a_folder_in_the_box_is_never_read(
    sat: tuple[Path, Home, threading.Thread], tmp_path: Path
) -> None:
    root, home, bridge = sat
    box = boxed.callhome_dir(root, "w2")
    box.mkdir(parents=True)
    secret = tmp_path / "secret.json"
    secret.write_text(_req("w2", "key0000002", "SECRET-VERB").decode())
    os.symlink(secret, box / "key0000002.req")
    os.mkfifo(box / "key0000003.req")
    (box / "key0000005.req").mkdir()  # a folder: passed over, never crashes the bridge
    got = _dropped(str(box), "key0000004", _req("w2", "key0000004", "told"))
    assert isinstance(got, dict) and got["out"] == "as w2: told\n"
    bridge.join(10)  # it went on past both, and ended: nothing hung on the FIFO
    assert not bridge.is_alive()
    assert [r["argv"] for r in home.seen] == [["told"]]  # the secret's verb never went home
    assert secret.read_text().startswith("{")  # and the link's target is untouched
