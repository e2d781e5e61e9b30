"""A burst through a real session PTY: every byte logged in order, the live screen right after
it, and `log -f` seeing output while the burst still runs (the pump paces its log writes)."""

from __future__ import annotations

import importlib.util
import re
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from looop.home.sessionfiles import socket_file
from looop.sessions import protocol as proto
from looop.sessions.client import follow, screenshot, send, wait
from looop.sessions.spawner import spawn
from looop.sessions.state import get_session
from tests.clocks import FixedClock
from tests.helpers import kill_sessions

pytestmark = pytest.mark.timeout(60)

FIX = Path(__file__).resolve().parent.parent / "fixtures"
PY = sys.executable
BURST = 5 * 1024 * 1024
# an attached client that stalls (a loaded machine) is dropped once its queue passes the cap:
# a burst well under the cap must reach it whole however slowly it reads
ATTACH_BURST = proto.CLIENT_QUEUE_MAX // 2


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    r = tmp_path / "data"
    r.mkdir()
    yield r
    kill_sessions(r)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}


def _printed(size: int) -> bytes:
    """What fixtures/printer.py prints for `size`, as the PTY hands it on (LF -> CR LF)."""
    spec = importlib.util.spec_from_file_location("printer", FIX / "printer.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return b"".join(mod.lines(size)).replace(b"\n", b"\r\n")


def _log(root: Path, sid: str) -> bytes:
    return (root / "sessions" / sid / "output.log").read_bytes()


@pytest.mark.timeout(60)
def test_every_byte_of_a_5mb_burst_reaches_output_log_in_order(
    root: Path, env: dict[str, str]
) -> None:
    spawn(root, "burst", [PY, str(FIX / "printer.py"), str(BURST)], cwd=root, env=env)
    assert wait(root, "burst", 40, FixedClock()) == 0
    logged = _log(root, "burst")
    assert logged == _printed(BURST)  # numbered lines: a lost or swapped chunk shows
    assert get_session(root, "burst").output_bytes == len(logged)


@pytest.mark.timeout(60)
def test_a_live_shot_during_a_burst_answers_and_after_it_shows_the_final_screen(
    root: Path, env: dict[str, str]
) -> None:
    cmd = f"{PY} {FIX / 'printer.py'} {BURST}; echo; echo END-OF-BURST; read x"
    spawn(root, "live", ["sh", "-c", cmd], cwd=root, env=env)
    shots = 0
    while b"END-OF-BURST" not in _log(root, "live")[-200:]:
        shot = screenshot(root, "live", "plain", True)  # mid-burst: answers, never blocks
        assert shot["rows"] == 24 and shot["cols"] == 80
        shots += 1
        assert get_session(root, "live").alive, _log(root, "live")[-300:]
    assert shots >= 1
    final = screenshot(root, "live", "plain", True)
    # The screen a terminal shows: the transcript's last rows, 123-column lines wrapped at 80,
    # then the marker; the cursor waits on the empty row below it (where `read` sits).
    text = (_printed(BURST) + b"\r\nEND-OF-BURST\r\n").decode()
    wrapped: list[str] = []
    for line in text.split("\r\n")[:-1]:
        wrapped += [line[i : i + 80] for i in range(0, max(len(line), 1), 80)]
    assert final["text"].split("\n") == [r.rstrip() for r in wrapped[-23:]]
    assert final["cursor"] == {"row": 23, "col": 0, "hidden": False}
    send(root, "live", "")
    assert wait(root, "live", 20, FixedClock()) == 0


@pytest.mark.timeout(60)
def test_log_follow_sees_output_while_a_burst_still_runs(root: Path, env: dict[str, str]) -> None:
    """The child prints as fast as it can, stamping each 64 KiB with its monotonic clock, until
    it reads a line. `log -f` (follow) must see stamps within a bound of when they were
    printed; were the log written only at the end, it would see nothing and the test would
    never send the line that ends the child (and time out)."""
    child = (
        "import os, sys, threading, time\n"
        "stop = threading.Event()\n"
        "threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True)"
        ".start()\n"
        "pad = b'x' * 119 + b'\\n'\n"
        "while not stop.is_set():\n"
        "    os.write(1, b'T=%.6f\\n' % time.monotonic() + pad * 540)\n"
        "os.write(1, b'STOPPED\\n')\n"
    )
    spawn(root, "flood", [PY, "-c", child], cwd=root, env=env)
    lags: list[float] = []
    seen = threading.Event()
    carry = ""

    def out(text: str) -> None:
        nonlocal carry
        now = time.monotonic()
        text = carry + text
        cut = text.rfind("\n") + 1  # whole lines only; the rest waits for the next chunk
        text, carry = text[:cut], text[cut:]
        for stamp in re.findall(r"T=(\d+\.\d{6})\r?\n", text):
            lags.append(now - float(stamp))
        if len(lags) >= 20:
            seen.set()

    result: list[int] = []
    reader = threading.Thread(
        target=lambda: result.append(follow(root, "flood", 0, False, out, FixedClock()))
    )
    reader.start()
    assert seen.wait(30), "log -f saw no stamp while the child was printing"
    assert get_session(root, "flood").alive  # still bursting when it saw them
    send(root, "flood", "")
    reader.join(30)
    assert result == [0]
    assert _log(root, "flood").endswith(b"STOPPED\r\n")  # and at the end, everything
    # How soon (the lag) is a figure for bench/, not a test: a loaded machine stretches it.
    # Stamps seen while the child still ran (asserted above) are what "not only at the end"
    # means.


def _watched(root: Path, env: dict[str, str], read: int, pause: float) -> bytes:
    """Attach to a session that bursts ATTACH_BURST bytes once the client is in place; read
    `read` bytes at a time, `pause` seconds apart, until EXIT: the output frames' bytes."""
    cmd = f"read x; {PY} {FIX / 'printer.py'} {ATTACH_BURST}"
    spawn(root, "watched", ["sh", "-c", cmd], cwd=root, env=env)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)
    sock.connect(socket_file(root, "watched"))
    with sock:
        # The line that starts the burst comes on the attach connection itself, so the
        # supervisor has the client in place before the child reads it.
        sock.sendall(proto.request_line("attach", cols=0, rows=0) + proto.frame(proto.INPUT, b"\n"))
        output = bytearray()
        buf = b""
        end: tuple[int, bytes] | None = None
        while end is None:
            time.sleep(pause)  # the reader's own pace (a slow watcher), not a wait for an event
            chunk = sock.recv(read)
            assert chunk, f"the connection ended before EXIT ({len(output)} bytes in)"
            buf += chunk
            while len(buf) >= proto.HEADER.size:
                tag, n = proto.HEADER.unpack(buf[: proto.HEADER.size])
                if len(buf) < proto.HEADER.size + n:
                    break
                payload, buf = (
                    buf[proto.HEADER.size : proto.HEADER.size + n],
                    buf[proto.HEADER.size + n :],
                )
                if tag == proto.OUTPUT:
                    output += payload
                elif tag == proto.EXIT:
                    end = (tag, payload)
                    break
                else:
                    assert tag != proto.DETACHED, "dropped as a slow reader under the queue cap"
    assert proto.parse_exit(end[1]) == (False, 0)
    return bytes(output)


@pytest.mark.timeout(60)
def test_an_attached_client_receives_the_whole_burst_then_the_exit(
    root: Path, env: dict[str, str]
) -> None:
    """A client attached before a burst gets every byte the log gets, in order, then EXIT."""
    output = _watched(root, env, 1 << 20, 0.0)
    logged = _log(root, "watched")
    assert logged.endswith(_printed(ATTACH_BURST))
    assert output == logged  # the echo of the line sent, then the burst: all of it


@pytest.mark.timeout(90)
def test_a_slow_watcher_still_gets_the_end_of_the_output_and_the_exit(
    root: Path, env: dict[str, str]
) -> None:
    """The session ends while a watcher that reads steadily but slowly (about 6 s for the
    burst, three times the grace a stalled one gets) is still behind: it is waited for."""
    output = _watched(root, env, 32 * 1024, 0.1)
    assert output == _log(root, "watched") and output.endswith(_printed(ATTACH_BURST))
