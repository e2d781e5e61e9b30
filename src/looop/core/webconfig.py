"""The config's `web` object, read the one way `looop web`, `looop up` and an ask's
notification read it. Light (no click, no web libraries): notify runs inside a beat."""

from __future__ import annotations

from typing import Any

from looop.home.errors import LooopError


def _http(url: object) -> bool:
    return isinstance(url, str) and url.startswith(("http://", "https://"))


def web_settings(raw: dict[str, Any]) -> dict[str, Any]:
    """The config's `web` object ({} when absent); a wrong shape names the key."""
    web = raw.get("web")
    if web is None:
        return {}
    if not isinstance(web, dict):
        raise LooopError('config key \'web\' must be an object like {"url": "https://…"}')
    url = web.get("url")
    if url is not None and not _http(url):
        raise LooopError("config key 'web.url' must be the dashboard's http(s):// base address")
    port = web.get("port")
    if port is not None and not (isinstance(port, int) and 0 <= port <= 65535):
        raise LooopError(f"config key 'web.port' must be a port number 0-65535, not {port!r}")
    host = web.get("host")
    if host is not None and not (isinstance(host, str) and host.strip()):
        raise LooopError("config key 'web.host' must be an address such as 127.0.0.1")
    for key, (_, low, high, what) in DOOR.items():
        v = web.get(key)
        if v is None:
            continue
        number = isinstance(v, (int, float)) and not isinstance(v, bool)
        if not (number and low <= v <= high and (what == "seconds" or v == int(v))):
            raise LooopError(f"config key 'web.{key}' must be {what} {low}-{high}, not {v!r}")
    return web


# The door's knobs (web/server.py's door): key -> (default, lowest, highest, unit). Defaults a phone
# on a slow network never meets, bounds that keep the server able to answer at all.
DOOR: dict[str, tuple[int, int, int, str]] = {
    "client_timeout_secs": (10, 1, 120, "seconds"),
    "max_connections": (256, 16, 4096, "a count"),
    "max_head_bytes": (16 << 10, 1 << 10, 1 << 20, "bytes"),
}


def door_limits(web: dict[str, Any]) -> tuple[float, int, int]:
    """(client deadline in seconds, connection cap, head size cap) from a `web` object that
    `web_settings` passed, each absent one at its default."""
    got = [web.get(k, d) for k, (d, _, _, _) in DOOR.items()]
    return float(got[0]), int(got[1]), int(got[2])


def _lenient(raw: dict[str, Any]) -> dict[str, Any]:
    """The `web` object as far as it reads; {} for any other shape (never raises: a beat or
    `looop up` goes on without the web face rather than stopping)."""
    web = raw.get("web")
    return web if isinstance(web, dict) else {}


def public_url(raw: dict[str, Any]) -> str | None:
    """`web.url` when it is an http(s) address with no whitespace, else None."""
    url = _lenient(raw).get("url")
    if not isinstance(url, str) or not _http(url) or any(c.isspace() for c in url):
        return None
    return url


def up_with_pulse(raw: dict[str, Any]) -> bool:
    """`"web": {"up": true}`: `looop up` starts the web face beside the pulse."""
    return _lenient(raw).get("up") is True


def mcp_over_http(raw: dict[str, Any]) -> bool:
    """`"web": {"mcp": true}`: `looop web` also serves MCP at /mcp (the SDK costs seconds to
    load, so a server that does not want it never loads it)."""
    return _lenient(raw).get("mcp") is True
