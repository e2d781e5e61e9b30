"""A local worker's contract verbs (BOX_VERBS: ask, claim, unclaim, tell, told, cost, flag,
unflag, kill) knock on its home's door; the worker writes nothing of the data dir itself.

- Inside a sandboxed worker's box (LOOOP_DOOR=1): one plain HTTP POST to `looop.door` through
  the box's own proxy URL, answered by the home's network filter outside the box
  (sandbox/netfilter.py, sandbox/door.py) as the worker the box was registered for.
- An unsandboxed worker (LOOOP_DOOR=@name): one JSON line on the abstract unix name of its
  home's session host (sessions/hostdoor.py), or of its own supervisor when that started
  without the host (sessions/hostdoor.SoleDoor), which knows it by its process's parents.

Both answer through contract/answering.py, as the SSH relay and the web API do.

Loaded only for a box's contract verb (by verbs/console.py), on the lightest modules: a
verb is a process each time. The retry loop and the
request are those of every way home (remote/callhome.py): the key is kept across retries, so a
verb runs once however often the knock is cut."""

from __future__ import annotations

import binascii
import socket
import sys
from typing import TYPE_CHECKING

from looop.contract.verbs import BOX_VERBS
from looop.remote.callhome import Pending, Refused, call, new_key, outcome, read_all, request

if TYPE_CHECKING:
    from collections.abc import Mapping


URL = "http://looop.door/api/v1/contract"
WHERE = "the sandbox's door"
WHERE_HOST = "the session host's door"
TIMEOUT_S = 60.0  # the door holds a call up to ~25 s before it answers 202
MAX_ANSWER = 4 << 20
NO_HOST = (
    "looop's door for this worker (its home's session host) does not answer: nothing was done; "
    "the session host may have been stopped: raise a flag by writing to your terminal and "
    "wait for a human (a restarted worker gets a new door)"
)
NO_PROXY = (
    "this box has no proxy to reach looop's door (HTTP_PROXY with credentials): raise a flag "
    "by writing to your terminal and wait for a human"
)


class Proxy:
    """The box's proxy and the credentials it knows the box by; ValueError (one line) when the
    box has none (srt sets HTTP_PROXY, `http://USER:TOKEN@HOST:PORT`, in every box)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        url = env.get("HTTP_PROXY") or env.get("http_proxy") or ""
        scheme, _, rest = url.partition("://")
        cred, at, place = rest.partition("/")[0].rpartition("@")
        host, _, port = place.rpartition(":")
        if scheme.lower() != "http" or not at or ":" not in cred or not host or not port.isdigit():
            raise ValueError(NO_PROXY)
        self.host, self.port = host.strip("[]"), int(port)
        user, _, token = cred.partition(":")
        plain = f"{_unquoted(user)}:{_unquoted(token)}".encode()
        self.auth = "Basic " + binascii.b2a_base64(plain, newline=False).decode()

    def post(self, body: bytes) -> dict[str, object] | Refused | Pending | None:
        head = (
            f"POST {URL} HTTP/1.1\r\nHost: looop.door\r\nProxy-Authorization: {self.auth}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        )
        try:
            raw = self._exchange(head.encode() + body)
        except OSError:
            return None  # the filter is restarting: the same key again
        status, data = _parsed(raw)
        if status == 407:
            return Refused("the sandbox's filter does not know this box (restart the worker)", 3)
        return None if status is None else outcome(status, data, WHERE)

    def _exchange(self, request: bytes) -> bytes:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        try:
            s.settimeout(TIMEOUT_S)
            s.connect((self.host if self.host != "localhost" else "127.0.0.1", self.port))
            s.sendall(request)
            return read_all(s, MAX_ANSWER)
        finally:
            s.close()


def _unquoted(text: str) -> str:
    """A URL's %XX escapes decoded (srt's user name holds base64's `=` as %3D)."""
    parts = text.split("%")
    out = [parts[0]]
    for part in parts[1:]:
        code = part[:2]
        if len(code) == 2 and all(c in "0123456789abcdefABCDEF" for c in code):
            out.append(chr(int(code, 16)) + part[2:])
        else:
            out.append("%" + part)
    return "".join(out)


def _parsed(raw: bytes) -> tuple[int | None, bytes]:
    """(status, body) of an HTTP/1.1 answer read to its end; no status when it was cut."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    words = head.split(b"\r\n", 1)[0].split()
    if not sep or len(words) < 2 or not words[1].isdigit():
        return None, b""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            want = int(value.strip())
            if len(body) < want:
                return None, b""  # cut mid-answer: ask again with the same key
            body = body[:want]
    return int(words[1]), body


class HostDoor:
    """The door of an unsandboxed worker: its home's session host, at the abstract unix name
    LOOOP_DOOR gives (`@name`). The host knows the caller by the kernel, not by this request."""

    def __init__(self, named: str) -> None:
        self.address = "\0" + named[1:]

    def post(self, body: bytes) -> dict[str, object] | Refused | Pending | None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(TIMEOUT_S)
            try:
                s.connect(self.address)
            except (ConnectionRefusedError, FileNotFoundError):
                return Refused(NO_HOST, 3)  # no host: never a write of our own instead
            s.sendall(body + b"\n")
            raw = read_all(s, MAX_ANSWER)
        except OSError:
            return None  # cut: the same key again
        finally:
            s.close()
        line, nl, _ = raw.partition(b"\n")
        status, _, data = line.partition(b" ")
        if not nl or not status.isdigit():
            return None
        return outcome(int(status), data, WHERE_HOST)


def knock(argv: list[str], env: Mapping[str, str]) -> int | None:
    """Run a contract verb through the door: its exit code; None for any other verb (it runs
    here, as usual)."""
    if not argv or argv[0] not in BOX_VERBS:
        return None
    named = env.get("LOOOP_DOOR", "")
    door: Proxy | HostDoor
    if named.startswith("@") and len(named) > 1:
        door, where = HostDoor(named), WHERE_HOST
    else:
        try:
            door, where = Proxy(env), WHERE
        except ValueError as e:
            sys.stderr.write(f"looop: {e}\n")
            return 3
    body = request(argv, env.get("LOOOP_SESSION_ID", ""), new_key(), sys.stdin)
    return call(argv, lambda: door.post(body), where)
