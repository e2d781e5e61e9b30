"""looop's own filtering proxy (sandbox/netproxy.py) driven by a real client the way a box drives
srt's: curl, with the box's proxy URL in its environment, through a socat relay from a TCP port
to the proxy's unix socket (srt's in-box relays are socat too). HTTPS_PROXY-style CONNECT,
plain HTTP forwarding and SOCKS5 with remote resolution each reach the box's own destination
and are refused the rest, with what srt's proxy prints."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from looop.sandbox import netfilter, netproxy
from tests.helpers import stop_serving
from tests.integration.test_netproxy import Upstream

pytestmark = pytest.mark.timeout(90)


class Relay:
    """socat from a loopback TCP port to the proxy's unix socket, as inside a box."""

    def __init__(self, sock: str) -> None:
        socat = shutil.which("socat")
        assert socat is not None, "socat is not installed: the sandbox suite's install brings it"
        probe = socket.create_server(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.proc = subprocess.Popen(
            [socat, f"TCP-LISTEN:{self.port},bind=127.0.0.1,fork,reuseaddr", f"UNIX-CONNECT:{sock}"]
        )
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise AssertionError("socat did not start") from None
                threading.Event().wait(0.02)  # socat gives no ready signal: its port is it
        raise AssertionError("socat never listened")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def rig(tmp_path: Path, srt: Path) -> Iterator[tuple[Relay, Upstream, Upstream]]:
    del srt  # its install brings socat
    a, b = Upstream(b"HTTP/1.0 200 OK\r\n\r\nfrom-a"), Upstream(b"HTTP/1.0 200 OK\r\n\r\nfrom-b")
    boxes = netproxy.Boxes(str(tmp_path / "boxes"))
    boxes.add("srt.box+a/=", netproxy.digest("tok-a"), [f"127.0.0.1:{a.port}"], [])
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(tmp_path / "net.sock"))
    listener.listen(16)
    ports = netfilter.Ports()
    server = threading.Thread(target=netfilter.serve, args=(listener, boxes, None, 64, ports))
    server.start()
    relay = Relay(str(tmp_path / "net.sock"))
    yield relay, a, b
    relay.close()
    stop_serving(listener, server, ports.close)
    a.close()
    b.close()


def _curl(url: str, proxy: str, *extra: str) -> subprocess.CompletedProcess[str]:
    curl = shutil.which("curl")
    assert curl is not None
    return subprocess.run(
        [curl, "-sS", "-m", "20", *extra, "--proxy", proxy, url],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )


def test_curl_through_the_relay_reaches_only_the_boxes_own_destination(
    rig: tuple[Relay, Upstream, Upstream],
) -> None:
    relay, a, b = rig
    user = "srt.box%2Ba%2F%3D"  # percent-encoded in the URL, as srt writes it
    http = f"http://{user}:tok-a@127.0.0.1:{relay.port}"
    socks = f"socks5h://{user}:tok-a@127.0.0.1:{relay.port}"
    # plain HTTP forwarding, a CONNECT tunnel (-p), SOCKS5 with the name resolved by the proxy
    assert _curl(f"http://127.0.0.1:{a.port}/", http).stdout == "from-a"
    tunnel = _curl(f"http://127.0.0.1:{a.port}/t", http, "-p")
    assert tunnel.stdout == "from-a", tunnel.stderr
    assert _curl(f"http://0x7f.1:{a.port}/s", socks).stdout == "from-a"
    assert len(a.got) == 3
    # b's port: refused over each, with srt's words where HTTP can carry them
    off = _curl(f"http://127.0.0.1:{b.port}/", http)
    assert "Connection blocked by network allowlist" in off.stdout
    assert _curl(f"http://127.0.0.1:{b.port}/", socks).returncode != 0
    wrong = _curl(f"http://127.0.0.1:{a.port}/", f"http://{user}:tok-b@127.0.0.1:{relay.port}")
    assert "from-a" not in wrong.stdout
    assert b.got == [] and len(a.got) == 3
