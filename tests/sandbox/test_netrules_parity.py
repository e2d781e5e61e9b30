"""looop's network rules (sandbox/netrules.py) against srt's own filtering proxy: the same allow
list, the same destinations — spelled as an attacker would spell them (inet_aton shorthands,
IPv4 inside IPv6, case, trailing dots, near-miss domains, other ports) — and the same verdict
from both. srt's proxy is the real one (srt's library in node, the list under test its own):
each destination is asked of it as a box asks it, a CONNECT with its credentials."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from looop.sandbox import boxhost, netrules
from tests.helpers import stop_serving

pytestmark = pytest.mark.timeout(180)


class Listener:
    """A TCP port that accepts on 127.0.0.1 and ::1 and hangs up: where a passed CONNECT lands."""

    def __init__(self) -> None:
        self.v4 = socket.create_server(("127.0.0.1", 0))
        self.port = self.v4.getsockname()[1]
        self.socks = [self.v4]
        try:
            self.socks.append(socket.create_server(("::1", self.port), family=socket.AF_INET6))
        except OSError:
            pass  # no IPv6 loopback here: the [::1] rows then pass by rule and fail to dial
        self.threads = [
            threading.Thread(target=self._serve, args=(s,), daemon=True) for s in self.socks
        ]
        for t in self.threads:
            t.start()

    def _serve(self, s: socket.socket) -> None:
        while True:
            try:
                conn, _ = s.accept()
            except OSError:
                return
            conn.close()

    def close(self) -> None:
        for s, t in zip(self.socks, self.threads, strict=True):
            stop_serving(s, t)


@pytest.fixture
def listener() -> Iterator[Listener]:
    got = Listener()
    yield got
    got.close()


# srt's library with `allowed` as its own list, its proxy up: prints "PORT TOKEN", then waits
# for its stdin to close.
SRT_PROXY = """
const { SandboxManager } = await import(process.argv[1]);
await SandboxManager.initialize({
  network: { allowedDomains: JSON.parse(process.argv[2]), deniedDomains: [] },
  filesystem: { denyRead: [], allowWrite: [], denyWrite: [] },
});
process.stdout.write(`${SandboxManager.getProxyPort()} ${SandboxManager.getProxyAuthToken()}\\n`);
process.stdin.on('end', async () => { await SandboxManager.reset(); process.exit(0); });
process.stdin.resume();
"""


@pytest.fixture
def srt_proxy(tmp_path: Path, srt: Path) -> Iterator[Callable[[list[str]], tuple[int, str]]]:
    """Starts srt's own proxy (node, srt's library) with an allow list: its port and the
    Proxy-Authorization a client of it sends."""
    lib = boxhost.library(str(srt))
    assert lib is not None, "srt's library is not beside the pinned srt"
    node = shutil.which("node")
    assert node is not None, "node is not on PATH (srt needs it)"
    procs: list[subprocess.Popen[str]] = []

    def start(allowed: list[str]) -> tuple[int, str]:
        tmp = tempfile.mkdtemp(prefix="nr-", dir="/tmp")  # srt's bridge socket: a short path
        proc = subprocess.Popen(
            [node, "--input-type=module", "-e", SRT_PROXY, lib, json.dumps(allowed)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            env={**os.environ, "TMPDIR": tmp},
        )
        procs.append(proc)
        assert proc.stdout is not None
        port, token = proc.stdout.readline().split()
        cred = base64.b64encode(f"srt:{token}".encode()).decode()
        return int(port), f"Basic {cred}"

    yield start
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(30)


def _srt_says(port: int, auth: str, target: str) -> str:
    """'refused' or 'passed' (connected, or let through and failed to dial)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n".encode())
        s.sendall(f"Proxy-Authorization: {auth}\r\n\r\n".encode())
        head = b""
        while b"\r\n" not in head:
            got = s.recv(4096)
            if not got:
                break
            head += got
    m = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    assert m, f"srt's proxy answered {target} with {head[:200]!r}"
    status = int(m.group(1))
    assert status != 407, "the box's credentials were refused: the test reads them wrong"
    return "refused" if status in (400, 403) else "passed"


def _we_say(lists: netrules.Lists, target: str) -> str:
    host, _, port_text = target.rpartition(":")
    port = int(port_text)
    if netrules.verdict(lists, host, port) is not None:
        return "refused"
    canon = netrules.canonical_host(host) or host
    if ":" in canon or netrules.canonical_host(canon) != canon or netrules.is_ip(canon):
        return "passed"  # an IP literal: the lists were the whole judgement
    try:
        infos = socket.getaddrinfo(canon, port, type=socket.SOCK_STREAM)
    except OSError:
        return "passed"  # allowed by the lists; nothing to dial
    local = netrules.local_addresses()
    kept = [i for i in infos if netrules.vet(lists, canon, port, str(i[4][0]), local) is None]
    return "passed" if kept else "refused"


def test_every_spelling_of_a_destination_gets_srts_verdict(
    srt_proxy: Callable[[list[str]], tuple[int, str]], listener: Listener
) -> None:
    p = listener.port
    allowed = ["example.com", "*.example.org", f"127.0.0.1:{p}", f"[::1]:{p}", "localhost"]
    port, auth = srt_proxy(allowed)
    targets = [
        # the loopback literal, every way a URL parser or inet_aton reads it
        f"127.0.0.1:{p}",
        f"127.1:{p}",
        f"0x7f.0.0.1:{p}",
        f"0x7F.1:{p}",
        f"2130706433:{p}",
        f"0177.0.0.1:{p}",
        f"127.0.0.1.:{p}",
        f"[::ffff:127.0.0.1]:{p}",
        f"[::ffff:7f00:1]:{p}",
        f"[0:0:0:0:0:0:0:1]:{p}",
        f"[::1]:{p}",
        f"[127.0.0.1]:{p}",  # brackets around an IPv4 address: srt takes them off, as we do
        # near misses: another address, another port, a numeric host a parser refuses
        f"127.0.0.2:{p}",
        f"127.0.0.1:{p + 1 if p < 65535 else p - 1}",
        f"[::2]:{p}",
        f"0:{p}",
        f"1.2.3.999:{p}",
        f"127.0.0.1.example.com:{p}",
        # names: exact, case, trailing dot, subdomains, the wildcard's apex
        "example.com:443",
        "EXAMPLE.com:443",
        "example.com.:443",
        "sub.example.com:443",
        "example.com.evil.net:443",
        "a.example.org:443",
        "a.b.example.org:80",
        "example.org:443",
        "xn--nxasmq6b.example.org:443",
        "0x7f.1.example.org:443",
        "bad_name.example.org:443",
        # a loopback name reaches loopback on any port
        f"localhost:{p}",
        f"LOCALHOST.:{p}",
        # malformed: a percent, a zone id
        f"127.0.0.1%2e:{p}",
        f"[fe80::1%25eth0]:{p}",
    ]
    lists = netrules.parse_lists(allowed)
    srt_verdicts = {t: _srt_says(port, auth, t) for t in targets}
    ours = {t: _we_say(lists, t) for t in targets}
    assert ours == srt_verdicts
    # not a table both sides refuse: the allowed spellings really pass, the others do not
    assert srt_verdicts[f"0x7f.0.0.1:{p}"] == "passed"
    assert srt_verdicts[f"127.0.0.2:{p}"] == "refused"
