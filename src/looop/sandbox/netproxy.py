"""looop's own filtering proxy for sandboxed boxes: HTTP (CONNECT and plain forwarding) and
SOCKS5 on one unix socket, each connection let through only to what its box's lists allow
(sandbox/netrules.py, srt's rules). A box is known by the credentials in its proxy URL (user and
token, its token's digest registered before the box runs: `Boxes.add`), and on its own ports
by the port; a connection with none, with a user and token no box has, or with another box's
on a box's port, reaches nothing.

Which protocol a connection speaks is told by its first byte (5: SOCKS5; else HTTP), as srt's
proxy tells them apart on its one port. Each connection gets a thread: a box opens a few at a
time, and a thread blocked in getaddrinfo or connect stalls no other box. Refusals are
answered as srt answers them — 407 without credentials, 403 with `X-Proxy-Error:
blocked-by-allowlist` and "Connection blocked by network allowlist" for a host off the list
(sandbox/srt.py's DENIED_MARK finds that line in a failed run's output), SOCKS reply 2 ("not
allowed by ruleset") — so what a client prints is the same under either filter."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import re
import select
import socket
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

from looop.home import jsonio
from looop.sandbox import netrules
from looop.sandbox.netboxes import Boxes

HEAD_MAX = 64 * 1024  # an HTTP request head, or a SOCKS greeting, longer than this is refused
DIAL_TIMEOUT_S = 30.0
IDLE_HANDSHAKE_S = 60.0  # a client that says nothing for this long is hung up on
CHUNK = 65536
DOOR_HOST = "looop.door"  # a box's contract requests go here; the filter answers them itself
DOOR_MAX = 2 << 20  # a request's body (the contract's own caps are smaller)
JSON = "Content-Type: application/json\r\n"
_REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 403: "Forbidden", 413: "Too Large"}
HELLO = b"\x00"  # a box handing over its ports (sandbox/netjoin.py), not a client
DENIED_BODY = b"Connection blocked by network allowlist"
_CONNECT_TARGET = re.compile(r"\[([^\]]+)\]:(\d+)|([^:]+):(\d+)")
_ABSOLUTE = re.compile(r"http://(\[[^\]]*\]|[^/?#:@\[\]]*)(?::(\d+))?([/?][^ ]*)?", re.I)
_HOP = frozenset(
    {"proxy-authorization", "proxy-connection", "connection", "keep-alive", "te", "upgrade"}
)


class Box(NamedTuple):
    digest: str
    lists: netrules.Lists
    worker: str  # whose contract door the box may knock on ("": none)


def find_box(boxes: Boxes, user: str, token: str, bound: str = "") -> Box | None:
    """The registered box these credentials name, None for any other pair, and for any box but
    `bound` (the box whose own port the connection came in on)."""
    rec = boxes.record(user) if user == bound or not bound else None
    if rec is None:
        return None
    try:
        lists = netrules.parse_lists(rec["allowed"], rec["denied"])
    except (ValueError, KeyError, TypeError):
        return None
    held = rec.get("token_sha256")
    if not isinstance(held, str) or not hmac.compare_digest(held, digest(token)):
        return None
    worker = rec.get("worker")
    return Box(held, lists, worker if isinstance(worker, str) else "")


def digest(token: str) -> str:
    """What a box's record keeps of its token (sandbox/boxhost.mjs makes it alike)."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


Resolve = Callable[[str, int], list[str]]
# A worker's contract request through its box's door: (the worker the box is registered
# for, the request's body) -> (HTTP status, JSON body). Served outside the box.
Door = Callable[[str, bytes], tuple[int, bytes]]


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(i[4][0]) for i in infos))


class Refused(Exception):
    """A destination the box may not reach; the message says why."""


def dial(
    box: Box,
    host: str,
    port: int,
    resolve: Resolve = _resolve,
    local: Callable[[], list[str]] = netrules.local_addresses,
) -> socket.socket:
    """A connection to host:port for `box`, by its lists and the resolved-address guard.
    Raises Refused (the rules say no) or OSError (the rules said yes; the network did not)."""
    why = netrules.verdict(box.lists, host, port)
    if host.lower().rstrip(".") == DOOR_HOST:
        why = "the door is answered by the filter itself, over plain HTTP"
    if why is not None:
        raise Refused(why)
    canon = netrules.canonical_host(host) or host
    if netrules.is_ip(canon):
        addresses = [canon]
    else:
        addresses = resolve(canon, port)
        mine = local()
        reasons = [netrules.vet(box.lists, canon, port, a, mine) for a in addresses]
        kept = [a for a, r in zip(addresses, reasons, strict=True) if r is None]
        if not kept:
            raise Refused(f"{canon} resolved to " + " / ".join(sorted({r for r in reasons if r})))
        addresses = kept
    last: OSError = OSError(f"no address for {canon}")
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout=DIAL_TIMEOUT_S)
        except OSError as e:
            last = e
    raise last


class Busy:
    """How many connections are open, and when the last one ended (the filter's idleness)."""

    def __init__(self, now: float) -> None:
        self.lock = threading.Lock()
        self.open = 0
        self.last = now


def handle(
    conn: socket.socket,
    boxes: Boxes,
    resolve: Resolve = _resolve,
    busy: Busy | None = None,
    hello: Callable[[socket.socket], str] | None = None,
    door: Door | None = None,
    bound: str = "",
) -> None:
    """One client connection, start to end; `hello` answers a box handing over its ports
    (sandbox/netfilter.py), on the filter's own socket only; `door` answers a worker's contract
    request sent to DOOR_HOST; `bound`: the box whose own port it came in on, the only one its
    credentials may name."""
    if busy is not None:
        with busy.lock:
            busy.open += 1
    try:
        conn.settimeout(IDLE_HANDSHAKE_S)
        first = conn.recv(1, socket.MSG_PEEK)
        if not first:
            return
        if first == HELLO and conn.family == socket.AF_UNIX and hello is not None:
            conn.sendall(hello(conn).encode() + b"\n")
            return
        if first == b"\x05":
            upstream, buffered = _socks(conn, boxes, resolve, bound), b""
        else:
            upstream, buffered = _http(conn, boxes, resolve, door, bound)
        if upstream is None:
            return
        with upstream:
            conn.settimeout(None)
            upstream.settimeout(None)
            if buffered:
                upstream.sendall(buffered)
            pipe(conn, upstream)
    except OSError:
        pass
    finally:
        conn.close()
        if busy is not None:
            with busy.lock:
                busy.open -= 1
                busy.last = time.monotonic()


def pipe(a: socket.socket, b: socket.socket) -> None:
    """Bytes both ways until both sides are done (a half-close passed on as one)."""
    peer = {a: b, b: a}
    open_ = [a, b]
    while open_:
        ready, _, _ = select.select(open_, [], [])
        for s in ready:
            data = s.recv(CHUNK)
            if data:
                peer[s].sendall(data)
                continue
            open_.remove(s)
            with contextlib.suppress(OSError):
                peer[s].shutdown(socket.SHUT_WR)


# ---- HTTP ---------------------------------------------------------------------------------


def _read_head(conn: socket.socket) -> tuple[bytes, bytes] | None:
    buf = b""
    while b"\r\n\r\n" not in buf:
        if len(buf) > HEAD_MAX:
            return None
        got = conn.recv(CHUNK)
        if not got:
            return None
        buf += got
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head, rest


def _answer(conn: socket.socket, status: str, extra: str = "", body: bytes = b"") -> None:
    head = f"HTTP/1.1 {status}\r\n{extra}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    conn.sendall(head.encode("latin-1") + body)


def _deny(conn: socket.socket) -> None:
    _answer(
        conn,
        "403 Forbidden",
        "Content-Type: text/plain\r\nX-Proxy-Error: blocked-by-allowlist\r\n",
        DENIED_BODY,
    )


def _credentials(headers: list[tuple[str, str]]) -> tuple[str, str] | None:
    for name, value in headers:
        if name.lower() != "proxy-authorization":
            continue
        scheme, _, blob = value.strip().partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, sep, token = base64.b64decode(blob.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return (user, token) if sep else None
    return None


def _http(
    conn: socket.socket, boxes: Boxes, resolve: Resolve, door: Door | None, bound: str
) -> tuple[socket.socket | None, bytes]:
    got = _read_head(conn)
    if got is None:
        _answer(conn, "400 Bad Request")
        return None, b""
    head, rest = got
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        _answer(conn, "400 Bad Request")
        return None, b""
    method, target, version = parts
    headers = [(n.strip(), v.strip()) for n, _, v in (h.partition(":") for h in lines[1:])]
    cred = _credentials(headers)
    box = find_box(boxes, *cred, bound) if cred is not None else None
    if box is None:
        _answer(
            conn, "407 Proxy Authentication Required", 'Proxy-Authenticate: Basic realm="srt"\r\n'
        )
        return None, b""
    if method == "CONNECT":
        m = _CONNECT_TARGET.fullmatch(target)
        if m is None:
            _answer(conn, "400 Bad Request")
            return None, b""
        host, port_text = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        if m.group(1):
            host = f"[{host}]"
        if host.lower().rstrip(".") == DOOR_HOST:
            _deny(conn)  # the door speaks plain HTTP to its own filter, never a tunnel
            return None, b""
        upstream = _open(conn, box, host, int(port_text), resolve)
        if upstream is not None:
            conn.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        return upstream, rest
    m = _ABSOLUTE.fullmatch(target)
    if m is None:
        _answer(conn, "400 Bad Request")  # an origin-form or https:// target: not a proxy's
        return None, b""
    host, port = m.group(1), int(m.group(2) or 80)
    if host.lower().rstrip(".") == DOOR_HOST:
        _knock(conn, box, method, headers, rest, door)
        return None, b""
    spelled = {v.lower() for n, v in headers if n.lower() == "host"}
    want = {host.lower(), f"{host}:{port}".lower()} if port != 80 else {host.lower(), f"{host}:80"}
    if len(spelled) > 1 or (spelled and not spelled <= want):
        _deny(conn)  # a Host header naming another site than the target: fronting
        return None, b""
    upstream = _open(conn, box, host, port, resolve)
    if upstream is None:
        return None, b""
    kept = [f"{n}: {v}" for n, v in headers if n and n.lower() not in _HOP]
    if not spelled:
        kept.append(f"Host: {host}" if port == 80 else f"Host: {host}:{port}")
    origin = f"{method} {m.group(3) or '/'} {version}"
    out = "\r\n".join([origin, *kept, "Connection: close", "", ""]).encode("latin-1")
    return upstream, out + rest


def _knock(
    conn: socket.socket,
    box: Box,
    method: str,
    headers: list[tuple[str, str]],
    rest: bytes,
    door: Door | None,
) -> None:
    """A worker's contract request at its box's door: its body read whole (bounded), then
    answered by `door` as the worker the box is registered for — who the box is, never what
    the request says."""
    if door is None or not box.worker:
        _answer(conn, "403 Forbidden", JSON, _error("this box has no door to looop"))
        return
    if method != "POST":
        _answer(conn, "405 Method Not Allowed", JSON, _error("the door takes POST only"))
        return
    lengths = [v for n, v in headers if n.lower() == "content-length"]
    if len(lengths) != 1 or not lengths[0].isdecimal():
        _answer(conn, "411 Length Required", JSON, _error("one Content-Length, please"))
        return
    size = int(lengths[0])
    if size > DOOR_MAX:
        _answer(conn, "413 Content Too Large", JSON, _error(f"over {DOOR_MAX >> 10} KiB"))
        return
    body = rest[:size]
    while len(body) < size:
        got = conn.recv(min(CHUNK, size - len(body)))
        if not got:
            return
        body += got
    conn.settimeout(None)  # an ask may wait for its answer as long as the door holds it
    status, reply = door(box.worker, body)
    _answer(conn, f"{status} {_REASONS.get(status, 'Answer')}", JSON, reply)


def _error(line: str) -> bytes:
    return jsonio.dumps({"error": line}).encode()


def _open(
    conn: socket.socket, box: Box, host: str, port: int, resolve: Resolve
) -> socket.socket | None:
    if not 1 <= port <= 65535:
        _answer(conn, "400 Bad Request")
        return None
    try:
        return dial(box, host, port, resolve)
    except Refused:
        _deny(conn)
    except OSError:
        _answer(conn, "502 Bad Gateway")
    return None


# ---- SOCKS5 -------------------------------------------------------------------------------


def _exactly(conn: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        got = conn.recv(n - len(buf))
        if not got:
            raise OSError("the client hung up")
        buf += got
    return buf


def _socks(conn: socket.socket, boxes: Boxes, resolve: Resolve, bound: str) -> socket.socket | None:
    _, n = _exactly(conn, 2)
    methods = _exactly(conn, n)
    if 2 not in methods:
        conn.sendall(b"\x05\xff")  # username/password only: the box's credentials
        return None
    conn.sendall(b"\x05\x02")
    ver, ulen = _exactly(conn, 2)
    user = _exactly(conn, ulen)
    (plen,) = _exactly(conn, 1)
    token = _exactly(conn, plen)
    try:
        box = find_box(boxes, user.decode(), token.decode(), bound) if ver == 1 else None
    except UnicodeDecodeError:
        box = None
    if box is None:
        conn.sendall(b"\x01\x01")
        return None
    conn.sendall(b"\x01\x00")
    _, cmd, _, atyp = _exactly(conn, 4)
    if atyp == 1:
        host = socket.inet_ntop(socket.AF_INET, _exactly(conn, 4))
    elif atyp == 4:
        host = "[" + socket.inet_ntop(socket.AF_INET6, _exactly(conn, 16)) + "]"
    elif atyp == 3:
        (hlen,) = _exactly(conn, 1)
        host = _exactly(conn, hlen).decode("latin-1")
    else:
        conn.sendall(_socks_reply(8))
        return None
    port = int.from_bytes(_exactly(conn, 2), "big")
    if cmd != 1:
        conn.sendall(_socks_reply(7))  # CONNECT only
        return None
    try:
        upstream = dial(box, host, port, resolve)
    except Refused:
        conn.sendall(_socks_reply(2))
        return None
    except OSError:
        conn.sendall(_socks_reply(5))
        return None
    conn.sendall(_socks_reply(0))
    return upstream


def _socks_reply(code: int) -> bytes:
    return bytes([5, code, 0, 1, 0, 0, 0, 0, 0, 0])
