"""`$LOOOP_BIN` inside a sandboxed worker's box: its contract verbs (BOX_VERBS: ask, claim,
unclaim, tell, told, cost, flag, unflag, kill) knock on the box's door — one plain HTTP POST
to `looop.door` through the box's own proxy URL, answered by the home's network filter outside
the box (core/netfilter.py, core/contract.py) as the worker the box was registered for. The box
writes nothing of the data dir: every change to looop's state is made by the door.

Loaded only for a box's contract verb (hot/main.py's face for it). The retry loop and the
request are those of every way home (remote/callhome.py): the key is kept across retries, so a
verb runs once however often the knock is cut."""

from __future__ import annotations

import base64
import http.client
import sys
from urllib.parse import unquote, urlsplit

from looop.hot.contractverbs import BOX_VERBS
from looop.remote.callhome import Pending, Refused, call, new_key, outcome, request

TYPE_CHECKING = False  # as remote/callhome.py: each worker verb is a process, typing ~5 ms
if TYPE_CHECKING:
    from collections.abc import Mapping

    from looop.hot.clock import Clock

URL = "http://looop.door/api/v1/contract"
WHERE = "the sandbox's door"
TIMEOUT_S = 60.0  # the door holds a call up to ~25 s before it answers 202
MAX_ANSWER = 4 << 20


class Proxy:
    """The box's proxy and the credentials it knows the box by; ValueError (one line) when the
    box has none (srt sets HTTP_PROXY in every box)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        url = env.get("HTTP_PROXY") or env.get("http_proxy") or ""
        try:
            parts = urlsplit(url)
            port = parts.port or 80
        except ValueError:
            port = 0
            parts = urlsplit("")
        if parts.scheme != "http" or not parts.hostname or not parts.username or not port:
            raise ValueError(
                "this box has no proxy to reach looop's door (HTTP_PROXY with credentials): "
                "raise a flag by writing to your terminal and wait for a human"
            )
        self.host, self.port = parts.hostname, port
        cred = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        self.auth = "Basic " + base64.b64encode(cred.encode()).decode()

    def post(self, body: bytes) -> dict[str, object] | Refused | Pending | None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT_S)
        try:
            headers = {"Proxy-Authorization": self.auth, "Content-Type": "application/json"}
            conn.request("POST", URL, body=body, headers=headers)
            resp = conn.getresponse()
            status, data = resp.status, resp.read(MAX_ANSWER)
        except (OSError, http.client.HTTPException):
            return None  # the filter is restarting: the same key again
        finally:
            conn.close()
        if status == 407:
            return Refused("the sandbox's filter does not know this box (restart the worker)", 3)
        return outcome(status, data, WHERE)


def serve(argv: list[str], env: dict[str, str], clock: Clock | None, caller: int | None) -> bool:
    """The face of a box's contract verbs (hot/main.py): knock, and end with the answer's
    exit code."""
    code = knock(argv, env)
    if code is None:
        return False
    raise SystemExit(code)


def knock(argv: list[str], env: Mapping[str, str]) -> int | None:
    """Run a contract verb through the door: its exit code; None for any other verb (it runs
    here, as usual)."""
    if not argv or argv[0] not in BOX_VERBS:
        return None
    try:
        proxy = Proxy(env)
    except ValueError as e:
        sys.stderr.write(f"looop: {e}\n")
        return 3
    body = request(argv, env.get("LOOOP_SESSION_ID", ""), new_key(), sys.stdin)
    return call(argv, lambda: proxy.post(body), WHERE)
