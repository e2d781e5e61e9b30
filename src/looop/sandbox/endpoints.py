"""The model endpoint a runner's CLI is pointed at, as the user configured it: the base-URL
variables of its environment and its own provider files (RunnerProfile.endpoint_files: JSON
settings, a TOML config). A sandboxed runner's network reaches that
endpoint without the user listing it again (sandbox/srt.runner_parts). Files are read, never
written; one that cannot be read or parsed names no endpoint.

A variable is set outside every sandbox; a provider file lives in the CLI's state, which a
sandboxed worker may write (a file absent at its start can be created): a file's endpoint is
allowed by itself only on a loopback or private address, never opening a door to the world."""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Iterator, Mapping
from typing import NamedTuple
from urllib.parse import urlsplit

from looop.home import jsonio
from looop.runners import RUNNERS, profile
from looop.runners.runnerprofile import RunnerProfile
from looop.sandbox.netrules import matches, split_entry


def env_keys(runners: tuple[RunnerProfile, ...] = RUNNERS) -> tuple[str, ...]:
    """The variables the preset CLIs' SDKs take a base URL from (their profiles')."""
    return tuple(dict.fromkeys(p.base_url_env for p in runners if p.base_url_env))


ENV_KEYS = env_keys()
_MAX_FILE = 1 << 20  # a provider file larger than this is not a settings file


class Endpoint(NamedTuple):
    entry: str  # host:port as srt's allowlist takes it
    source: str  # where it was configured: a variable's name or a file's path and key
    auto: bool  # allowed without the user listing it (a variable, or a file's local address)
    in_use: bool = True  # the CLI surely talks to it (not one provider of a list it may use)


def allow_entry(url: str) -> str | None:
    """host:port of an http(s) URL (the scheme's port when none is given), IPv6 bracketed;
    None for anything else."""
    if not isinstance(url, str) or any(c.isspace() for c in url.strip()):
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host or not host.isascii():
        return None
    if any(c in host for c in "/\\@?#\"'"):
        return None
    port = port or (443 if parts.scheme == "https" else 80)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def endpoints(
    runner: str,
    env: Mapping[str, str],
    home: str | None,
    runners: tuple[RunnerProfile, ...] = RUNNERS,
) -> list[Endpoint]:
    """Every endpoint `runner` is configured to use, first seen first, no repeats."""
    found: dict[str, Endpoint] = {}
    keys = ENV_KEYS if runners is RUNNERS else env_keys(runners)
    for source, url, in_use in _urls(profile(runner, runners), env, home, keys):
        entry = allow_entry(url)
        if entry is not None and entry not in found:
            auto = source in keys or goes_direct(entry)
            found[entry] = Endpoint(entry, source, auto, in_use)
    return list(found.values())


def listed(entry: str, domains: list[str]) -> bool:
    """Whether an allowlist naming `domains` lets `entry` (host:port) through, as srt's
    proxy matches it (sandbox/netrules.py)."""
    host, port = split_entry(entry)
    return any(matches(host, port or 0, split_entry(d)) for d in domains)


def is_loopback(domain: str) -> bool:
    host = split_entry(domain).host
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# What srt's NO_PROXY sends straight into the sandbox's own network, where nothing answers:
# loopback (above), link-local and the private ranges.
_DIRECT_NETS = tuple(
    ipaddress.ip_network(n)
    for n in ("169.254.0.0/16", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)


def goes_direct(domain: str) -> bool:
    """Whether srt's NO_PROXY matches this allowlist entry: a request to it skips the proxy
    and finds nothing (connection refused), allowlisted or not."""
    if is_loopback(domain):
        return True
    try:
        addr = ipaddress.ip_address(split_entry(domain).host)
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback or any(addr in net for net in _DIRECT_NETS)


Found = Iterator[tuple[str, str, bool]]  # (where it was set, the URL, surely in use)


def _urls(
    p: RunnerProfile | None, env: Mapping[str, str], home: str | None, keys: tuple[str, ...]
) -> Found:
    for key in keys:
        if env.get(key):
            yield key, env[key], True
    if p is None:
        return
    paths: list[str | None] = []
    for var, under, rel in p.endpoint_files:
        if var and env.get(var):
            paths.append(os.path.join(env[var], under) if under else env[var])
        elif rel:
            paths.append(os.path.join(home, *rel.split("/")) if home else None)
    for path in dict.fromkeys(x for x in paths if x):
        conf = _conf(path)
        for where, url in _walk(conf, conf, p.endpoint_keys, ()):
            yield f"{path} {'.'.join(where)}", url, p.endpoint_sure


def _walk(
    root: dict[str, object], node: object, keys: tuple[str, ...], where: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], str]]:
    """The strings at `keys` under `node` ("*": any key, "<field>": the key `root`'s field
    names), each with the keys that led there."""
    if not keys:
        if isinstance(node, str) and where:
            yield where, node
        return
    key, rest = keys[0], keys[1:]
    for name, child in node.items() if isinstance(node, dict) else ():
        name = str(name)
        if key == "*" or name == key or (key[:1] == "<" and root.get(key[1:-1]) == name):
            yield from _walk(root, child, rest, (*where, name))


def _conf(path: str) -> dict[str, object]:
    """A provider file's settings (TOML by its name, else JSON); {} when it cannot be read,
    is over _MAX_FILE or does not parse to a table."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read(_MAX_FILE + 1)
        if len(text) > _MAX_FILE:
            return {}
        got = tomllib.loads(text) if path.endswith(".toml") else jsonio.loads(text)
    except (OSError, ValueError):  # UnicodeDecodeError and TOMLDecodeError are ValueErrors
        return {}
    return got if isinstance(got, dict) else {}
