"""The home's network filter (sandbox/netfilter.py) as sandbox/boxhost.py starts it, a real process:
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

from looop.home.anchors import shown
from looop.home.peers import holder
from looop.home.where import runtime_dir
from looop.sandbox import boxhost
from tests.helpers import process_ended, wait_until
from tests.nonroot import nonroot as as_nonroot
from tests.procwatch import by_argv

pytestmark = [pytest.mark.timeout(60), pytest.mark.process]


@pytest.fixture
def home(tmp_path: Path) -> Iterator[boxhost.Home]:
    base = tempfile.mkdtemp(prefix="nf", dir="/tmp")  # short: a socket path must fit
    data = tmp_path / "data"
    data.mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    got = boxhost.Home(base, str(data), env)
    yield got
    pid = holder(boxhost.filter_name(got))
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
    home: boxhost.Home,
) -> None:
    boxhost.ensure_filter(home)
    net, name = boxhost.filter_socket(home), boxhost.filter_name(home)
    first = holder(name)
    assert first is not None and _answers(net)

    shutil.rmtree(runtime_dir(home.base))
    assert not os.path.exists(net)
    boxhost.ensure_filter(home)  # what a sandboxed start does before its wrap
    assert holder(name) == first  # the same filter, asked on its name
    assert _answers(net)  # its socket bound again, for the next box to bind
    assert os.stat(runtime_dir(home.base)).st_mode & 0o777 == 0o700

    # a second filter of the home (a start racing past the lock) leaves at once, saying ok
    argv = [sys.executable, "-m", "looop.sandbox.netfilter", net + "2", net + ".b2", "30"]
    r, w = os.pipe()
    second = subprocess.Popen(
        [*argv, "@" + name[1:], "--ready-fd", str(w)], pass_fds=(w,), cwd=home.data
    )
    os.close(w)
    assert second.wait(20) == 0
    assert os.read(r, 16) == b"ok\n"
    os.close(r)
    assert not os.path.exists(net + "2") and holder(name) == first

    boxhost.stop(home.base, home.data, None)  # `down`
    wait_until(lambda: process_ended(first), 15, "the filter's end")
    assert not os.path.exists(net)


def test_a_knock_from_another_process_of_the_user_gets_one_word(home: boxhost.Home) -> None:
    """The name answers "?" only (anything else is closed unanswered)."""
    boxhost.ensure_filter(home)
    name = boxhost.filter_name(home)
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


SQUAT = """
import socket, sys
s = socket.socket(socket.AF_UNIX); s.bind("\\0" + sys.argv[1][1:]); s.listen(8); s.settimeout(60)
print("listening", flush=True)
got = b""
try:
    while True:
        c, _ = s.accept(); c.settimeout(5)
        try:
            while chunk := c.recv(65536):
                got += chunk
        except OSError:
            pass
        c.close()
        open(sys.argv[2], "wb").write(got)
except OSError:
    pass
"""


def test_another_user_on_the_filters_name_hears_nothing_and_stops_no_box(
    home: boxhost.Home,
) -> None:
    """Abstract names have no permissions: another local user can take the filter's name
    first. The filter then serves without it, found by its socket; the squatter is told
    nothing (a knock is sent only after the peer's uid is checked)."""
    with as_nonroot() as mallory:
        name, net = boxhost.filter_name(home), boxhost.filter_socket(home)
        heard = mallory.home / "heard"
        squat = subprocess.Popen(
            mallory.argv(mallory.python, "-c", SQUAT, shown(name), str(heard)),
            stdout=subprocess.PIPE,
            env=mallory.env,
        )
        try:
            assert squat.stdout is not None and squat.stdout.readline() == b"listening\n"
            boxhost.ensure_filter(home)
            assert _answers(net)
            err = Path(net[: -len(".sock")] + ".err").read_text()
            assert "another user holds" in err
            boxhost.ensure_filter(home)  # found by its socket: no second filter
            # by its argv, or by its title once it set it (core/proctitle.py writes over argv)
            found = {*by_argv(net), *by_argv(f"looop: network filter {net}")}
            filters = [p for p in found if not process_ended(p)]
            assert len(filters) == 1, filters
            boxhost.stop(home.base, home.data, None)
            wait_until(lambda: process_ended(filters[0]), 15, "the filter's end")
            assert not heard.exists() or heard.read_bytes() == b""
        finally:
            squat.kill()
            squat.wait(10)
