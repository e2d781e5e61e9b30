"""The worker side of the contract away from home: one request (a verb, its arguments and a
key chosen once) sent home again and again until the home answers, whatever carries it (the
SSH relay's unix socket or a drop box, remote/shim.py; the web API over HTTPS from a pod).

A worker calls these verbs often. The key is kept across
retries, so the home runs the verb once however often the link drops (contract/requests.py)."""

from __future__ import annotations

import os
import sys
import time

# A worker's contract verbs run this in a process of their own (the `remote claim` row of
# docs/BENCHMARKS.md): typing alone would add ~5 ms to each, so types are for the checker only.
from typing import TYPE_CHECKING

from looop.home import jsonio

if TYPE_CHECKING:
    from collections.abc import Callable
    from socket import socket
    from typing import TextIO

RETRY_S = 1.0
GIVE_UP_S = 120.0  # every verb but ask: a home gone this long is said, not waited on forever
EX_TEMPFAIL = 75  # the home did not answer in time: try again later


class Refused:
    """The home (or the way to it) said no for good: one line and an exit code, no retry."""

    __slots__ = ("code", "line")

    def __init__(self, line: str, code: int) -> None:
        self.line = " ".join(line.split())
        self.code = code


class Pending:
    """The home holds the request and has no answer yet (a long poll ran out): ask again at
    once with the same key."""

    __slots__ = ()


PENDING = Pending()


def new_key() -> str:
    return os.urandom(12).hex()


def request(argv: list[str], worker: str, key: str, stdin: TextIO | None) -> bytes:
    """The request every carrier sends: protocol 1, the key, the worker, argv, stdin (read
    only when an argument is `-`, as the verbs do)."""
    text = stdin.read() if "-" in argv[1:] and stdin is not None else None
    req = {"v": 1, "key": key, "worker": worker, "argv": argv, "stdin": text}
    return jsonio.dumps(req).encode()


def read_all(s: socket, most: int) -> bytes:
    """What `s` sends until it closes (or once past `most` bytes)."""
    got, size = [], 0
    while size <= most:
        chunk = s.recv(65536)
        if not chunk:
            break
        got.append(chunk)
        size += len(chunk)
    return b"".join(got)


def answer_of(raw: bytes) -> dict[str, object] | None:
    """An answer `{out, err, code}` read back; None when cut or not one (ask again)."""
    try:
        got = jsonio.loads(raw.decode())
    except ValueError:
        return None
    return got if isinstance(got, dict) and isinstance(got.get("code"), int) else None


def call(
    argv: list[str],
    once: Callable[[], dict[str, object] | Refused | Pending | None],
    where: str,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    give_up_s: float = GIVE_UP_S,
) -> int:
    """Run `once` (an attempt: the answer, a Refused, PENDING, or None when no answer came)
    until the home answers; print the answer and return its exit code. An
    `ask` waits forever (a human may take hours); any other verb gives up after `give_up_s`
    with one line and 75."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    start = monotonic()
    said = False
    while True:
        begun = monotonic()
        got = once()
        if isinstance(got, dict):
            out.write(str(got.get("out", "")))
            err.write(str(got.get("err", "")))
            code = got.get("code", 1)
            return code if isinstance(code, int) else 1
        if isinstance(got, Refused):
            err.write(f"looop: {got.line}\n")
            return got.code
        if argv[0] != "ask" and monotonic() - start > give_up_s:
            err.write(f"looop: the home does not answer ({where}); try again later\n")
            return EX_TEMPFAIL
        if got is PENDING:
            # the home held it as long as it could: ask again now (a too-quick one waits)
            sleep(max(0.0, 0.2 - (monotonic() - begun)))
            continue
        if not said:
            err.write("looop: the home is out of reach; retrying until it answers\n")
            err.flush()
            said = True
        sleep(RETRY_S)


def outcome(status: int, data: bytes, url: str) -> dict[str, object] | Refused | Pending | None:
    """What one HTTP answer means for the retry loop."""
    if status == 200:
        return answer_of(data)  # None when it does not read as one: ask again
    if status == 202:
        return PENDING
    if status >= 500 or status == 429:
        return None
    why = _error_line(data) or f"HTTP {status}"
    if status in (400, 405, 411, 413):
        return Refused(f"the home refused the request: {why}", 2)
    if status in (401, 403):
        return Refused(f"the home refused this worker: {why}", 3)
    if status == 404:
        return Refused(f"the home at {url} serves no contract (its looop is older?): {why}", 3)
    return Refused(f"the home answered HTTP {status}: {why}", 3)


def _error_line(data: bytes) -> str:
    try:
        got = jsonio.loads(data.decode("utf-8", "replace"))
    except ValueError:
        return ""
    err = got.get("error") if isinstance(got, dict) else None
    return " ".join(err.split())[:300] if isinstance(err, str) else ""
