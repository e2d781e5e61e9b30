"""A client's control requests to a session's supervisor, on plain strings and `_socket`.

client.py's requests are these, and `looop shot`, `send` and `key` serve a live session
through them without click (the `socket` module's enums alone cost ~6 ms, pathlib ~10).
Every request retries its connect briefly, giving up at once when the session is over, and
has a read timeout, so a wedged supervisor never hangs a caller. A line typed with Enter
is submitted here, for every way of typing one (`send`).
"""

from __future__ import annotations

import _socket  # not `socket`: its enums and wrappers cost the hot verbs more than their work
import os
import time

from looop.home import jsonio
from looop.home import protocol as proto
from looop.home.keys import encode_keys
from looop.home.sessionfiles import LIVE_NAMES, SessionError, get_light, live, socket_file

TYPE_CHECKING = False  # on the click-free path of `looop send`: no typing
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

# x CONNECT_PAUSE_S: ~4 s for a supervisor that is still binding, or binding again after
# its socket was removed (dnotify tells it: sessions/socketwatch.py)
CONNECT_TRIES = 100
CONNECT_PAUSE_S = 0.04
OP_TIMEOUT_S = {"kill": 20.0, "restart": 20.0, "screenshot": 15.0}
DEFAULT_OP_TIMEOUT_S = 10.0

# a line typed with Enter: how long its text may take to show before Enter goes anyway, how
# often an older supervisor's screen is looked at meanwhile, how much of the line's end must show
ECHO_WAIT_S = 2.0
ECHO_POLL_S = 0.02
ECHO_TAIL = 12

INPUT_OPS = frozenset({"send", "resize", "detach"})
# Named keys are a few bytes: encoded here, not by binascii, which maps itself and libz (two
# shared libraries) into every `looop key`. Longer binary input still goes to binascii.
_B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
SHORT_B64 = 1024


def _over_error(s: dict[str, Any], op: str) -> SessionError:
    """Why a request cannot reach a session that is not running (get_light's dict)."""
    sid = s["id"]
    if s["state"] in LIVE_NAMES:
        return SessionError(f"session {sid} is not running (its supervisor is gone)")
    if op in INPUT_OPS:
        return SessionError(f"session {sid} has already finished — it no longer accepts input")
    return SessionError(f"session {sid} has already finished")


def _connect(data: str, sid: str, op: str) -> _socket.socket:
    """Connect, retrying briefly; stops at once when the session is over (never trusts the
    socket of a session whose lock is free)."""
    path = socket_file(data, sid)
    for _ in range(CONNECT_TRIES):
        s = get_light(data, sid)
        if not s["alive"]:
            raise _over_error(s, op)
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        sock.settimeout(2.0)
        try:
            sock.connect(path)
            return sock
        except (FileNotFoundError, ConnectionRefusedError, TimeoutError):
            sock.close()
        time.sleep(CONNECT_PAUSE_S)
    raise SessionError(f"session {sid} is not answering on its control socket; try again")


def request(data: str, sid: str, op: str, *, timeout_s: float | None = None, **fields: Any) -> Any:
    """One control request; returns the reply's `data` or raises SessionError."""
    line = proto.request_line(op, **fields)
    if len(line) > proto.MAX_LINE:
        raise SessionError(f"request too large for session {sid} (max {proto.MAX_LINE} bytes)")
    wait = timeout_s if timeout_s is not None else OP_TIMEOUT_S.get(op, DEFAULT_OP_TIMEOUT_S)
    sock = _connect(data, sid, op)
    buf = b""
    try:
        sock.settimeout(wait)
        sock.sendall(line)
        while b"\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
            if len(buf) > proto.MAX_REPLY:
                raise SessionError(f"session {sid} sent an oversized reply to `{op}`")
    except TimeoutError as e:
        raise SessionError(
            f"session {sid} did not answer `{op}` within {wait:g}s (its supervisor may be stuck)"
        ) from e
    except OSError:
        buf = b""
    finally:
        sock.close()
    if b"\n" not in buf:
        s = get_light(data, sid)
        if not s["alive"]:
            raise _over_error(s, op)
        raise SessionError(f"session {sid} closed the connection during `{op}`; try again")
    try:
        # as json.loads(bytes) decodes; jsonio runs json's C scanner without importing json
        reply = jsonio.loads(buf.split(b"\n", 1)[0].decode("utf-8", "surrogatepass"))
    except ValueError as e:
        raise SessionError(f"session {sid} sent an unreadable reply to `{op}`") from e
    if not isinstance(reply, dict):
        raise SessionError(f"session {sid} sent an unreadable reply to `{op}`")
    if not reply.get("ok"):
        raise SessionError(str(reply.get("error") or f"session {sid} refused `{op}`"))
    return reply.get("data")


def _dict(data: Any) -> dict[str, Any]:
    return data if isinstance(data, dict) else {}


def send(data: str, sid: str, text: str | bytes, newline: bool = True) -> dict[str, Any]:
    """Type into the session; `offset` is the log size before the input (for expect since).

    Input that ends in Enter (CR) after something visible is submitted in two writes: the
    text, then Enter once the text shows on the worker's screen (at most ECHO_WAIT_S; a
    program that does not echo gets its Enter then). An agent TUI that reads text and CR in
    one read takes the CR as part of a paste and never submits the line — two writes alone
    can still arrive in one read on a loaded machine. Every way of typing a line (`looop send`,
    steer_session, the web, MCP, a remote worker's far end) comes through here."""
    tail = _echo_tail(text) if not newline else ""
    if not tail:
        return _send_once(data, sid, text, newline)
    first = _send_once(data, sid, text[:-1], False)
    _await_echo(data, sid, tail, int(first.get("offset") or 0))
    enter = _send_once(data, sid, "\r", False)
    return {**first, "sent": int(first.get("sent") or 0) + int(enter.get("sent") or 0)}


def _send_once(data: str, sid: str, text: str | bytes, newline: bool) -> dict[str, Any]:
    if isinstance(text, bytes):
        fields: dict[str, Any] = {"data_b64": b64encode(text)}
    else:
        fields = {"text": text}
    return _dict(request(data, sid, "send", newline=newline, **fields))


def _echo_tail(text: str | bytes) -> str:
    """The last few visible characters typed before a final CR; "" when there is no final
    CR or nothing visible before it (a bare Enter, a control key): then one write."""
    said = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    if not said.endswith("\r"):
        return ""
    last = said[:-1].replace("\r", "\n").split("\n")[-1]
    shown = "".join(c for c in last if c.isprintable() and not c.isspace())
    return shown[-ECHO_TAIL:]


def _await_echo(data: str, sid: str, tail: str, offset: int) -> None:
    """Until the worker wrote output after `offset` and its screen shows `tail`, at most
    ECHO_WAIT_S: one request the supervisor answers when its output shows it
    (sessions/echowait.py). Over or not answering: the Enter's own request says so."""
    try:
        wait = ECHO_WAIT_S + 2.0  # the supervisor answers at ECHO_WAIT_S: a margin to say so
        request(data, sid, "echo", timeout_s=wait, tail=tail, offset=offset, timeout=ECHO_WAIT_S)
    except SessionError as e:
        if "unknown op `echo`" in str(e):
            _poll_echo(data, sid, tail, offset)


def _poll_echo(data: str, sid: str, tail: str, offset: int) -> None:
    """The same wait on a supervisor of an older build, which knows no `echo`: its status
    and screen looked at every ECHO_POLL_S."""
    deadline = time.monotonic() + ECHO_WAIT_S
    while True:
        try:
            got = request(data, sid, "status", timeout_s=ECHO_WAIT_S)
            said = _dict(got).get("output_bytes") or 0
            if isinstance(said, int) and said > offset:
                got = request(data, sid, "screenshot", timeout_s=ECHO_WAIT_S, format="plain")
                if tail in "".join(str(_dict(got).get("text", "")).split()):
                    return
        except SessionError:
            return
        if time.monotonic() >= deadline:
            return
        time.sleep(ECHO_POLL_S)


def b64encode(raw: bytes) -> str:
    """base64.b64encode(raw) as text (standard alphabet, `=` padding)."""
    if len(raw) > SHORT_B64:
        import binascii  # lazy: only long binary input (a key is a few bytes)

        return binascii.b2a_base64(raw, newline=False).decode("ascii")
    out = bytearray()
    whole = len(raw) - len(raw) % 3
    for i in range(0, whole, 3):
        n = raw[i] << 16 | raw[i + 1] << 8 | raw[i + 2]
        out += bytes((_B64[n >> 18], _B64[n >> 12 & 63], _B64[n >> 6 & 63], _B64[n & 63]))
    left = len(raw) - whole
    if left:
        n = raw[whole] << 16 | (raw[whole + 1] << 8 if left == 2 else 0)
        quad = bytes((_B64[n >> 18], _B64[n >> 12 & 63], _B64[n >> 6 & 63]))
        out += quad[: left + 1] + b"=" * (3 - left)
    return out.decode("ascii")


def send_keys(data: str, sid: str, names: Sequence[str]) -> dict[str, Any]:
    """Named keys (keys.py), every name checked before anything is sent."""
    return send(data, sid, encode_keys(names), newline=False)


def live_screenshot(data: str, sid: str, fmt: str, trim: bool) -> dict[str, Any] | None:
    """The screen a running session's supervisor renders; None when the session is not
    running (or ended during the request): its screen is then its log replayed, the
    emulator's work (client.screenshot), which this module never loads."""
    if not live(data, sid):
        return None
    try:
        return _dict(request(data, sid, "screenshot", format=fmt, trim=trim))
    except SessionError:
        if live(data, sid):
            raise
    return None


def home_sockets(data: str) -> list[str]:
    """Every control socket bound for sessions of this data dir's path, found from the
    runtime dir alone (the data dir may be gone): live ones and ones a killed supervisor
    left behind."""
    rooted = os.path.dirname(socket_file(data, "x"))
    try:
        names = sorted(os.listdir(rooted))
    except OSError:
        return []
    return [os.path.join(rooted, n) for n in names if n.endswith(".sock")]


def request_at(path: str, op: str, timeout_s: float) -> Any:
    """One control request to the supervisor on this socket path, with no session dir to
    check first (its data dir may be gone); None when nobody answers or it refuses."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    buf = b""
    try:
        sock.settimeout(2.0)
        sock.connect(path)
        sock.settimeout(timeout_s)
        sock.sendall(proto.request_line(op))
        while b"\n" not in buf and len(buf) <= proto.MAX_REPLY:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
    except OSError:
        return None
    finally:
        sock.close()
    try:
        reply = jsonio.loads(buf.split(b"\n", 1)[0].decode("utf-8", "surrogatepass"))
    except ValueError:
        return None
    if not isinstance(reply, dict) or not reply.get("ok"):
        return None
    return reply.get("data") or {}


# A socket or folder of another home is swept only once this old: a supervisor of an older
# build binding there right now would get no second try (this build's binds again)
OTHERS_OLD_S = 600.0


def sweep_home_sockets(data: str) -> int:
    """Remove this home's control sockets that nobody listens on (a SIGKILLed supervisor's),
    then their folder once it is empty: run by `looop down` and by the home's session host as
    it starts. A live supervisor whose name is taken by mistake binds it again (dnotify tells
    it: sessions/socketwatch.py). How many were removed."""
    return _sweep_folder(os.path.dirname(socket_file(data, "x")), None)


def sweep_all_sockets(now: float) -> int:
    """The same for every home of this user (data dirs removed without a `down`, a test
    run's), their sockets and folders older than OTHERS_OLD_S at wall time `now`: run by a
    session host as it starts. How many sockets were removed."""
    top = os.path.dirname(os.path.dirname(socket_file("/", "x")))
    try:
        names = os.listdir(top)
    except OSError:
        return 0
    hexdigits = "0123456789abcdef"
    return sum(
        _sweep_folder(os.path.join(top, n), now - OTHERS_OLD_S)
        for n in names
        if len(n) == 16 and all(c in hexdigits for c in n)
    )


def _sweep_folder(folder: str, older_than: float | None) -> int:
    """Dead sockets in `folder` (none newer than `older_than`, when given), then the folder
    if that left it empty."""
    removed = 0
    folder_old = _old(folder, older_than)  # before removing a socket makes it new
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    listening = listening_paths() if names else None
    for n in names:
        path = os.path.join(folder, n)
        if not n.endswith(".sock") or not _old(path, older_than):
            continue
        if listening is not None and path in listening:
            continue  # a live supervisor's: knocking to learn it would wake it for nothing
        if _dead_socket(path):
            try:
                os.unlink(path)
                removed += 1
            except OSError:
                pass
    if folder_old:
        try:
            os.rmdir(folder)  # refused while anything is in it
        except OSError:
            pass
    return removed


def _old(path: str, older_than: float | None) -> bool:
    if older_than is None:
        return True
    try:
        return os.lstat(path).st_mtime <= older_than
    except OSError:
        return False


def listening_paths(table: str = "/proc/net/unix") -> frozenset[str] | None:
    """The paths of the unix sockets listening now in this network namespace, as the kernel
    lists them; None where it cannot tell (no /proc): each socket is then knocked on. One
    not listed may still listen in another namespace, so it is knocked on before removal."""
    try:
        with open(table, "rb") as f:
            rows = f.read().splitlines()[1:]
    except OSError:
        return None
    out = set()
    for row in rows:
        cols = row.split(None, 7)  # Num RefCount Protocol Flags Type St Inode Path
        if len(cols) == 8 and int(cols[3], 16) & ACCEPTING:
            out.add(cols[7].decode("utf-8", "surrogateescape"))
    return frozenset(out)


ACCEPTING = 0x10000  # __SO_ACCEPTCON in /proc/net/unix's Flags: a listening socket


def _dead_socket(path: str) -> bool:
    """A socket file whose connect is refused: bound by a process that is gone."""
    try:
        before = os.lstat(path)
    except OSError:
        return False
    if (before.st_mode & 0o170000) != 0o140000:  # not a socket: not ours to judge
        return False
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        sock.connect(path)
    except ConnectionRefusedError:
        try:
            return os.lstat(path).st_ino == before.st_ino
        except OSError:
            return False
    except OSError:
        return False  # busy (a full backlog) or anything else: leave it
    finally:
        sock.close()
    return False
