"""`$LOOOP_BIN` inside a Kubernetes pod: the contract verbs (ask, claim, unclaim, tell, told,
cost) go home to the web API's POST /api/v1/contract with the worker's own token; every other
verb (flag, kill, …) runs on the pod's own looop.

The way home is the pod's `…-home` Secret: LOOOP_HOME_URL (http or https; a path prefix is
kept) and LOOOP_HOME_TOKEN (the worker's token, `lw1.…`). TLS is verified against the
system's CAs, or the PEM bundle named by LOOOP_HOME_CA. Without a way home the home-bound
verbs refuse at once, in one line, exit 3, and tell/told stay in the pod.

http.client and ssl load only once a verb goes home: workers call these verbs often. The
retry loop is remote/callhome.py's, the SSH shim's too."""

from __future__ import annotations

import json
import os
import sys
from urllib.parse import urlsplit

from looop.remote.callhome import (
    PENDING,
    RELAYED,
    Pending,
    Refused,
    answer_of,
    call,
    new_key,
    request,
)

TYPE_CHECKING = False  # as remote/callhome.py: each worker verb is a process, typing ~5 ms
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

# Without a way home these refuse: nobody reads the pod's own mailbox, leases or ledger.
HOME_VERBS = ("ask", "claim", "unclaim", "cost")
ROUTE = "/api/v1/contract"
TIMEOUT_S = 60.0  # the home holds a call up to ~25 s before it answers 202
MAX_ANSWER = 4 << 20


def no_way_home(verb: str) -> str:
    return (
        f"looop: '{verb}' cannot reach the home from this pod (it was started without a way "
        "home: LOOOP_HOME_URL and LOOOP_HOME_TOKEN): raise a flag ($LOOOP_BIN flag ID) and "
        "wait for a human at your terminal\n"
    )


class Home:
    """Where home is and how to speak TLS to it; ValueError (one line) when it cannot be."""

    def __init__(self, url: str, token: str, ca: str | None) -> None:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise ValueError(f"LOOOP_HOME_URL '{url[:200]}' is not a URL") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"LOOOP_HOME_URL '{url[:200]}' is not an http(s) URL")
        if not token.isascii() or not token.isprintable():
            raise ValueError("LOOOP_HOME_TOKEN is not printable ASCII")
        self.url = url
        self.token = token
        self.host = parts.hostname
        self.port = port
        self.path = parts.path.rstrip("/") + ROUTE
        self.tls: Any = None
        if parts.scheme == "https":
            import ssl  # lazy: only a verb going home over TLS

            try:
                self.tls = ssl.create_default_context(cafile=ca or None)
            except (OSError, ssl.SSLError) as e:
                raise ValueError(
                    f"LOOOP_HOME_CA '{ca}' is no readable PEM bundle of CAs ({e})"
                ) from None

    def post(self, body: bytes) -> dict[str, object] | Refused | Pending | None:
        """One attempt: the answer, a refusal, pending, or None (retry later)."""
        import http.client  # lazy: only a verb going home
        import ssl

        conn: http.client.HTTPConnection
        if self.tls is not None:
            conn = http.client.HTTPSConnection(
                self.host, self.port, timeout=TIMEOUT_S, context=self.tls
            )
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT_S)
        try:
            conn.request(
                "POST",
                self.path,
                body=body,
                headers={
                    "Authorization": f"Bearer {self.token}",
                    "Content-Type": "application/json",
                },
            )
            resp = conn.getresponse()
            status, data = resp.status, resp.read(MAX_ANSWER)
        except ssl.SSLCertVerificationError as e:
            return Refused(
                f"the home's certificate does not verify ({e.verify_message}): name its CA "
                "in LOOOP_HOME_CA",
                3,
            )
        except (OSError, http.client.HTTPException):
            return None  # the home is out of reach: the same key again
        finally:
            conn.close()
        return outcome(status, data, self.url)


def outcome(status: int, data: bytes, url: str) -> dict[str, object] | Refused | Pending | None:
    """What one HTTP answer means for the retry loop."""
    if status == 200:
        return answer_of(data)  # None when it does not read as one: ask again
    if status == 202:
        return PENDING
    if status >= 500 or status == 429:
        return None
    why = _error_line(data) or f"HTTP {status}"
    if status in (400, 413):
        return Refused(f"the home refused the request: {why}", 2)
    if status in (401, 403):
        return Refused(f"the home refused this worker: {why}", 3)
    if status == 404:
        return Refused(f"the home at {url} serves no contract (its looop is older?): {why}", 3)
    return Refused(f"the home answered HTTP {status}: {why}", 3)


def _error_line(data: bytes) -> str:
    try:
        got = json.loads(data.decode("utf-8", "replace"))
    except ValueError:
        return ""
    err = got.get("error") if isinstance(got, dict) else None
    return " ".join(err.split())[:300] if isinstance(err, str) else ""


def go_home(argv: list[str], env: Mapping[str, str]) -> int:
    try:
        home = Home(env["LOOOP_HOME_URL"], env["LOOOP_HOME_TOKEN"], env.get("LOOOP_HOME_CA"))
    except ValueError as e:
        sys.stderr.write(f"looop: {e}\n")
        return 3
    body = request(argv, env.get("LOOOP_SESSION_ID", ""), new_key(), sys.stdin)
    return call(argv, lambda: home.post(body), home.url)


def main(argv: list[str], real: str) -> int:
    env = dict(os.environ)
    verb = argv[0] if argv else ""
    if verb in RELAYED:
        if env.get("LOOOP_HOME_URL") and env.get("LOOOP_HOME_TOKEN"):
            return go_home(argv, env)
        if verb in HOME_VERBS:
            sys.stderr.write(no_way_home(verb))
            return 3
    os.execv(real, [real, *argv])
    return 127
