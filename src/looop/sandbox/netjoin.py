"""A box's end of looop's network filter, run once inside the box before its command (and
before srt's seccomp helper, which forbids unix sockets): it makes the box's proxy ports
listen (HTTP 3128 and SOCKS 1080 on the box's own loopback, as srt's relays would), hands the
listening sockets to the home's filter over its socket with the box's credentials, and exits.
The filter accepts the box's connections on them itself, so no relay process stays in the box.

    python -I -S netjoin.py FILTER_SOCKET USER TOKEN PORT...

Exit 0 once the filter took them; anything else (the filter refused or is not there, a port
is taken) exits 1 with one line, and srt's own relays are started instead. Standalone: run
by path with no site-packages, it imports nothing of looop's."""

from __future__ import annotations

import socket
import sys

HELLO = b"\x00"  # the first byte of a registration: neither SOCKS (5) nor an HTTP method
TIMEOUT_S = 10.0
BACKLOG = 4096  # as srt's relays listen


def listen(port: int) -> socket.socket:
    """The box's port, on every address of its own loopback (IPv6 and IPv4 where it can)."""
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        address: tuple[str, int] = ("::", port)
    except OSError:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        address = ("0.0.0.0", port)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(address)
    except OSError:
        s.close()
        if address[0] != "::":
            raise
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # a box with no IPv6
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port))
    s.listen(BACKLOG)
    return s


def join(path: str, user: str, token: str, ports: list[int]) -> str | None:
    """None once the filter at `path` holds the box's listening ports, else why not."""
    listeners = [listen(p) for p in ports]
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(TIMEOUT_S)
    try:
        conn.connect(path)
        conn.sendall(HELLO)
        line = f"{user} {token} {' '.join(map(str, ports))}\n".encode()
        socket.send_fds(conn, [line], [s.fileno() for s in listeners])
        answer = read_line(conn, 512)
    finally:
        conn.close()
        for s in listeners:
            s.close()  # the filter holds its own copies now
    said = answer.decode("utf-8", "replace").strip()
    return None if said == "ok" else (said or "the filter hung up")


def read_line(conn: socket.SocketType, most: int = 1 << 30) -> bytes:
    """What `conn` says up to a newline (or its close), stopping past `most` bytes."""
    said = b""
    while not said.endswith(b"\n") and len(said) < most:
        got = conn.recv(min(most, 65536))
        if not got:
            break
        said += got
    return said


def main(argv: list[str]) -> int:
    if len(argv) < 4 or not all(p.isdigit() for p in argv[3:]):
        sys.stderr.write("usage: netjoin.py FILTER_SOCKET USER TOKEN PORT...\n")
        return 2
    try:
        why = join(argv[0], argv[1], argv[2], [int(p) for p in argv[3:]])
    except OSError as e:
        why = str(e)
    if why is None:
        return 0
    sys.stderr.write(f"looop: the box's network filter did not take its ports: {why}\n")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
