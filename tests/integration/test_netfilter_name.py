"""The home's network filter (core/netfilter.py) as core/sbxhost.py starts it, a real process:
its abstract name keeps it single and findable with the runtime dir emptied under it — the
next sandboxed start finds the same filter, which binds its boxes' socket again, and a second
filter started for the home says "ok" and leaves; `down`'s stop ends it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from looop.core import sbxhost
from looop.hot.anchors import holder
from looop.hot.where import runtime_dir
from tests.helpers import process_ended, wait_until

pytestmark = [pytest.mark.timeout(60), pytest.mark.process]


@pytest.fixture
def home(tmp_path: Path) -> Iterator[sbxhost.Home]:
    base = tempfile.mkdtemp(prefix="nf", dir="/tmp")  # short: a socket path must fit
    data = tmp_path / "data"
    data.mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    got = sbxhost.Home(base, str(data), env)
    yield got
    pid = holder(sbxhost.filter_name(got))
    if pid is not None:
        os.kill(pid, 9)
    shutil.rmtree(base, ignore_errors=True)


def _answers(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(path)
        except OSError:
            return False
    return True


def test_a_wiped_runtime_dir_keeps_one_filter_that_binds_its_socket_again(
    home: sbxhost.Home,
) -> None:
    sbxhost.ensure_filter(home)
    net, name = sbxhost.filter_socket(home), sbxhost.filter_name(home)
    first = holder(name)
    assert first is not None and _answers(net)

    shutil.rmtree(runtime_dir(home.base))
    assert not os.path.exists(net)
    sbxhost.ensure_filter(home)  # what a sandboxed start does before its wrap
    assert holder(name) == first  # the same filter, asked on its name
    assert _answers(net)  # its socket bound again, for the next box to bind
    assert os.stat(runtime_dir(home.base)).st_mode & 0o777 == 0o700

    # a second filter of the home (a start racing past the lock) leaves at once, saying ok
    argv = [sys.executable, "-m", "looop.core.netfilter", net + "2", net + ".b2", "30"]
    r, w = os.pipe()
    second = subprocess.Popen(
        [*argv, "@" + name[1:], "--ready-fd", str(w)], pass_fds=(w,), cwd=home.data
    )
    os.close(w)
    assert second.wait(20) == 0
    assert os.read(r, 16) == b"ok\n"
    os.close(r)
    assert not os.path.exists(net + "2") and holder(name) == first

    sbxhost.stop(home.base, home.data, None)  # `down`
    wait_until(lambda: process_ended(first), 15, "the filter's end")
    assert not os.path.exists(net)


def test_a_knock_from_another_process_of_the_user_gets_one_word(home: sbxhost.Home) -> None:
    """The name answers "?" only (anything else is closed unanswered)."""
    sbxhost.ensure_filter(home)
    name = sbxhost.filter_name(home)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(name)
        s.sendall(b"GET / HTTP/1.1\r\n\r\n")
        try:
            said = s.recv(100)
        except ConnectionResetError:  # closed with the request unread
            said = b""
        assert said == b""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(name)
        s.sendall(b"?")
        assert s.recv(100) == b"ok\n"
