"""Who may talk to the server: the token (Jupyter's way — one random secret in the URL, then a
cookie), the Host header (DNS rebinding) and the Origin of every state-changing call (CSRF).
Pure checks over plain values, so they are tested without a server."""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit

from looop.home import store
from looop.home.paths import Paths

TOKEN_BYTES = 32  # 256 bits: never guessed, compared in constant time
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


def token_path(paths: Paths) -> Path:
    """The token's runtime place: beside the pulse's pid in the data dir's .lock/ (0600)."""
    return paths.lock_dir / "web-token"


def runtime_path(paths: Paths) -> Path:
    """Where a running server says where it listens (its pid and URL, no token)."""
    return paths.lock_dir / "web.json"


def load_or_make_token(paths: Paths, fresh: bool = False) -> str:
    """The token kept in .lock/web-token, made (0600) when absent or when `fresh`. Kept across
    restarts so a server restarted beside the pulse keeps the links a phone already holds."""
    p = token_path(paths)
    if not fresh:
        try:
            text = (store.read_text(p) or "").strip()
        except OSError:
            text = ""
        if len(text) >= 32 and text.isascii() and text.replace("-", "").replace("_", "").isalnum():
            if p.stat().st_mode & 0o077:
                os.chmod(p, 0o600)  # never readable by others, whoever loosened it
            return text
    token = secrets.token_urlsafe(TOKEN_BYTES)
    store.atomic_write(p, token + "\n", 0o600)
    return token


def cookie_name(port: int) -> str:
    """Per port: cookies ignore ports, and two servers on one host must not clobber each
    other's login."""
    return f"looop_web_{port}"


def token_ok(given: str | None, token: str) -> bool:
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), token.encode())


def is_loopback(host: str) -> bool:
    h = host.strip("[]")
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def host_name(value: str) -> str:
    """The lowercase name of `name:port` / `[v6]:port` / `name`; "" when it cannot be read
    (a port that is no number included)."""
    try:
        got = urlsplit(f"//{value.strip()}")
        _ = got.port  # raises on a port that is no number, as the name alone would not
        return (got.hostname or "").lower()
    except ValueError:
        return ""


@dataclass(frozen=True)
class Guard:
    """The bound address, the port and the names the server answers to."""

    token: str
    bind: str
    port: int
    public: tuple[str, ...] = field(default=())  # extra host names (the config's public URL)

    @cached_property
    def _bound(self) -> tuple[str, bool, bool]:
        """(bound name, loopback names served, every interface): facts of the bind, read once."""
        wide = self.bind.strip("[]") in ("0.0.0.0", "::", "")  # every interface
        return self.bind.strip("[]").lower(), wide or is_loopback(self.bind), wide

    @cached_property
    def _nodename(self) -> str:
        return os.uname().nodename.lower()

    def host_ok(self, header: str | None) -> bool:
        """A Host header naming an address we serve: loopback names when bound to loopback,
        the bound name, the public URL's name; any IP literal or this machine's name when bound
        to every interface. A rebound DNS name (evil.example -> 127.0.0.1) is refused."""
        if not header:
            return False
        name = host_name(header)
        if not name:
            return False
        bound, loopback, wide = self._bound
        if name in self.public or name == bound:
            return True
        if loopback and name in LOOPBACK_NAMES:
            return True
        if wide:
            try:
                ipaddress.ip_address(name)
                return True
            except ValueError:
                return name == self._nodename
        return False

    def origin_ok(self, origin: str | None, host_header: str | None) -> bool:
        """A state-changing call's Origin must be this very server: its scheme-less host:port
        equal to the Host the browser sent (already checked), or a public URL's name."""
        if not origin or origin == "null" or not host_header:
            return False
        try:
            o = urlsplit(origin)
        except ValueError:
            return False
        if o.scheme not in ("http", "https") or not o.netloc:
            return False
        return o.netloc.lower() == host_header.strip().lower() or (
            (o.hostname or "").lower() in self.public
        )


def public_names(url: str | None) -> tuple[str, ...]:
    if not url:
        return ()
    try:
        name = urlsplit(url).hostname
    except ValueError:
        return ()
    return (name.lower(),) if name else ()
