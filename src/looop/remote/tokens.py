"""Per-worker tokens: what a worker away from home (a Kubernetes pod) shows the home's web API
to speak its contract (ask, claim, unclaim, tell, told, cost report) as that one worker.

A token is an HMAC of the worker's id under a key kept in `<data>/.lock/worker-token-key`
(0600), so the home stores no token per worker and can check one without a lookup. It is
never the human's web token: it answers asks of nobody, kills nothing, reads no screen.
Rotating the key (`rotate`) voids every token handed out."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from pathlib import Path

from looop.home import store
from looop.home.paths import Paths

PREFIX = "lw1."  # names the scheme, so a human token is never mistaken for one
KEY_BYTES = 32
_DOMAIN = b"looop-worker-token\0"


def key_path(paths: Paths) -> Path:
    return paths.lock_dir / "worker-token-key"


def _key(paths: Paths, make: bool) -> bytes | None:
    p = key_path(paths)
    try:
        raw = (store.read_text(p) or "").strip()
    except OSError:
        raw = ""
    if len(raw) == 2 * KEY_BYTES:
        try:
            return bytes.fromhex(raw)
        except ValueError:
            pass
    if not make:
        return None  # no key (or a broken one): no token checks out
    return rotate(paths)


def rotate(paths: Paths) -> bytes:
    """A fresh key (0600): every token minted before it no longer checks out."""
    key = secrets.token_bytes(KEY_BYTES)
    paths.lock_dir.mkdir(parents=True, exist_ok=True)
    store.atomic_write(key_path(paths), key.hex() + "\n", 0o600)
    return key


def _sign(key: bytes, wid: str) -> str:
    mac = hmac.new(key, _DOMAIN + wid.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
    return PREFIX + base64.urlsafe_b64encode(mac).decode().rstrip("=")


def mint(paths: Paths, wid: str) -> str:
    """The token worker `wid` speaks its contract with (the key made on first use)."""
    key = _key(paths, make=True)
    assert key is not None
    return _sign(key, wid)


def check(paths: Paths, wid: str, token: str | None) -> bool:
    """True when `token` is the one minted for `wid` under the current key."""
    if not token or not token.startswith(PREFIX) or len(token) > 128:
        return False
    key = _key(paths, make=False)
    if key is None:
        return False
    return hmac.compare_digest(_sign(key, wid).encode(), token.encode("utf-8", "replace"))


def looks_scoped(token: str | None) -> bool:
    """A bearer token of this scheme (so the human-token check can step aside for it)."""
    return bool(token) and str(token).startswith(PREFIX)
