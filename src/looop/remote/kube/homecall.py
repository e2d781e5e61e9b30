"""A pod's contract verb going home: one POST to the web API's /api/v1/contract with the
worker's own token, over http or https (verified against the system's CAs or LOOOP_HOME_CA).

Apart from remote/shim.py, which every `$LOOOP_BIN` in a pod runs: http.client and ssl
load only once a verb goes home. The retry loop is remote/callhome.py's, the SSH shim's too."""

from __future__ import annotations

import http.client
import ssl
import sys
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from looop.remote.callhome import Pending, Refused, call, new_key, outcome, request

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

ROUTE = "/api/v1/contract"
TIMEOUT_S = 60.0  # the home holds a call up to ~25 s before it answers 202
MAX_ANSWER = 4 << 20


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
            try:
                self.tls = ssl.create_default_context(cafile=ca or None)
            except (OSError, ssl.SSLError) as e:
                raise ValueError(
                    f"LOOOP_HOME_CA '{ca}' is no readable PEM bundle of CAs ({e})"
                ) from None

    def post(self, body: bytes) -> dict[str, object] | Refused | Pending | None:
        """One attempt: the answer, a refusal, pending, or None (retry later)."""
        conn = (
            http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT_S)
            if self.tls is None
            else http.client.HTTPSConnection(
                self.host, self.port, timeout=TIMEOUT_S, context=self.tls
            )
        )
        head = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        try:
            conn.request("POST", self.path, body=body, headers=head)
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


def go_home(argv: list[str], env: Mapping[str, str]) -> int:
    try:
        home = Home(env["LOOOP_HOME_URL"], env["LOOOP_HOME_TOKEN"], env.get("LOOOP_HOME_CA"))
    except ValueError as e:
        sys.stderr.write(f"looop: {e}\n")
        return 3
    body = request(argv, env.get("LOOOP_SESSION_ID", ""), new_key(), sys.stdin)
    return call(argv, lambda: home.post(body), home.url)
