"""A remote worker's `looop`: the contract verbs (ask, claim, unclaim, tell, told, cost) go
home through the relay socket the SSH master forwards; every other verb runs here.

Import-light (os, sys, socket, json): workers call these verbs often. Each request carries a
key chosen here and kept across retries, so a link that drops mid-verb is retried until the
home answers, and the home runs it once (workers/callhome.py, workers/answer.py)."""

from __future__ import annotations

import os
import socket
import sys

from looop.workers.callhome import RELAYED as RELAYED
from looop.workers.callhome import answer_of, call, new_key, request


def _once(path: str, req: bytes) -> dict[str, object] | None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        s.sendall(req)
        s.shutdown(socket.SHUT_WR)
        buf = b""
        while True:
            got = s.recv(65536)
            if not got:
                break
            buf += got
    except OSError:
        return None
    finally:
        s.close()
    return answer_of(buf)  # None when cut mid-answer: ask again with the same key


def relay(argv: list[str], env: dict[str, str]) -> int:
    path = env.get("LOOOP_RELAY_SOCK", "")
    req = request(argv, env.get("LOOOP_SESSION_ID", ""), new_key(), sys.stdin)
    return call(argv, lambda: _once(path, req), path)


def main(argv: list[str]) -> int:
    env = dict(os.environ)
    if argv and argv[0] in RELAYED and env.get("LOOOP_RELAY_SOCK"):
        return relay(argv, env)
    real = env.get("LOOOP_REAL_BIN", "looop")
    os.execv(real, [real, *argv])
    return 127
