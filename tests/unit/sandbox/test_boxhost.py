"""The sandbox host's client side (sandbox/boxhost.py): which srt it can load, where each home's
host is found, and how a wrapped line is run — a dead socket and a refusal are one line."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from looop.sandbox import boxhost, boxrun, srt

pytestmark = pytest.mark.unit

_CONF = srt.conf([], [], [], [], None, "/nowhere/config.json")


def _npm_like(tmp_path: Path) -> Path:
    """An npm install's shape: bin/srt -> dist/cli.js, with dist/index.js beside it."""
    dist = tmp_path / "pkg" / "dist"
    dist.mkdir(parents=True)
    (dist / "cli.js").write_text("")
    (dist / "index.js").write_text("")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "srt").symlink_to(dist / "cli.js")
    return tmp_path / "bin" / "srt"


def test_the_library_is_found_beside_the_srt_cli(tmp_path: Path) -> None:
    prog = _npm_like(tmp_path)
    assert boxhost.library(str(prog)) == str(tmp_path / "pkg" / "dist" / "index.js")


def test_a_wrapper_script_has_no_library_so_srt_runs_per_box(tmp_path: Path) -> None:
    wrapper = tmp_path / "srt"
    wrapper.write_text('#!/bin/sh\nexec real-srt "$@"\n')
    assert boxhost.library(str(wrapper)) is None
    got = srt.argvs(
        str(wrapper),
        str(tmp_path / "s.json"),
        _CONF,
        ["x"],
        "/t",
        boxhost.Home("/tmp", str(tmp_path), {}),
    )
    assert got[0][:4] == [str(wrapper), "-s", str(tmp_path / "s.json"), "-c"]


def test_each_home_and_each_srt_has_its_own_host() -> None:
    a = boxhost.socket_path("/rt", "/data/a", "/srt/index.js")
    assert a != boxhost.socket_path("/rt", "/data/b", "/srt/index.js")
    assert a != boxhost.socket_path("/rt", "/data/a", "/other/index.js")
    assert a == boxhost.socket_path("/rt", "/data/a/", "/srt/index.js")
    assert a.startswith(f"/rt/looop-{os.geteuid()}/sbx-")


@pytest.fixture
def short_base() -> Iterator[str]:
    """A runtime base short enough for a socket path (pytest's tmp_path is too long)."""
    base = tempfile.mkdtemp(prefix="sbx", dir="/tmp")
    yield base
    shutil.rmtree(base, ignore_errors=True)


def _serve_once(path: str, reply: bytes) -> threading.Thread:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(1)

    def run() -> None:
        conn, _ = s.accept()
        conn.recv(65536)
        conn.sendall(reply)
        conn.close()
        s.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def _filter_up(home: boxhost.Home) -> socket.socket:
    """A listening socket where the home's filter serves: up, as far as the wrap can tell."""
    path = boxhost.filter_socket(home)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(8)
    return s


def test_a_box_runs_as_a_launcher_that_wraps_at_each_run(tmp_path: Path, short_base: str) -> None:
    """The stored argv wraps again at each (re)start, as `srt -s SETTINGS -c LINE` did; the
    host is asked to be up when the argv is built."""
    prog = _npm_like(tmp_path)
    lib = boxhost.library(str(prog))
    assert lib is not None
    home = boxhost.Home(short_base, str(tmp_path / "data"), {})
    sock = boxhost.socket_path(home.base, home.data, lib)
    os.makedirs(os.path.dirname(sock))
    t = _serve_once(sock, b'{"pong": true}\n')
    path = str(tmp_path / "s.json")
    with _filter_up(home):
        got = srt.argv(str(prog), path, _CONF, "x", "/t", home)
    t.join(5)
    boxrun = [sys.executable, "-m", "looop.sandbox.boxrun"]
    assert got[:7] == [*boxrun, lib, home.base, home.data, path]
    assert got[7].endswith("; x") and "TMPDIR=/t" in got[7]


def test_the_wrapped_line_becomes_bubblewrap_itself() -> None:
    assert boxhost.as_exec("bwrap --ro-bind / / -- bash -c x") == (
        "exec bwrap --ro-bind / / -- bash -c x"
    )
    assert boxhost.as_exec("FOO=1 bwrap x") == "FOO=1 bwrap x"  # not a plain command: as is


def test_a_launcher_without_its_settings_says_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = boxrun.main(["/lib/index.js", "/rt", str(tmp_path), str(tmp_path / "gone.json"), "x"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("looop: the sandbox cannot be set up:") and err.count("\n") == 1


def test_a_refusal_from_the_host_is_one_line(tmp_path: Path, short_base: str) -> None:
    prog = _npm_like(tmp_path)
    lib = boxhost.library(str(prog))
    assert lib is not None
    home = boxhost.Home(short_base, str(tmp_path / "data"), {})
    sock = boxhost.socket_path(home.base, home.data, lib)
    os.makedirs(os.path.dirname(sock))
    t = _serve_once(sock, b'{"error": "srt refused the settings: bad path"}\n')
    with (
        _filter_up(home),
        pytest.raises(boxhost.HostError, match="srt refused the settings: bad path"),
    ):
        boxhost.wrap(home, lib, _CONF, "x")
    t.join(5)


def test_no_node_means_no_host_and_a_line_naming_it(tmp_path: Path, short_base: str) -> None:
    prog = _npm_like(tmp_path)
    home = boxhost.Home(short_base, str(tmp_path / "data"), {"PATH": str(tmp_path / "empty")})
    with pytest.raises(srt.SandboxError, match="node is not on PATH"):
        srt.argv(
            str(prog),
            str(tmp_path / "s.json"),
            _CONF,
            "x",
            "/t",
            home,
        )


def test_a_runtime_dir_too_long_for_a_socket_is_named_with_the_fix(tmp_path: Path) -> None:
    prog = _npm_like(tmp_path)
    home = boxhost.Home("/" + "r" * 120, str(tmp_path / "data"), {})
    with pytest.raises(srt.SandboxError, match="set LOOOP_RUNTIME_DIR to a shorter"):
        srt.argv(
            str(prog),
            str(tmp_path / "s.json"),
            _CONF,
            "x",
            "/t",
            home,
        )
