"""The world hash over plain strings, light enough for `looop state --json` on the fast path
(no pathlib, dataclasses, typing or json). loop/world.py's read_world hashes through the same
`hash_world`, so the two cannot disagree."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from looop.home import jsonio, where
from looop.home.hashing import digest, wake_signal

if TYPE_CHECKING:
    Policy = list[tuple[str, str, bytes | None]]  # (rel path, item key, bytes or unreadable)
    Snaps = list[tuple[str, bytes | None]]  # (file name, bytes or unreadable)

UNREADABLE = "!unreadable"


def hash_world(
    policy: Policy, snaps: Snaps, pinned: dict[str, str] | None = None
) -> tuple[str, str, dict[str, str]]:
    """(world hash, policy hash, items) in the exact core §9 layout. `pinned`: item key ->
    the signal to hash instead of the snapshot's own (a flapping sensor's, loop/flap)."""
    buf = bytearray()
    items: dict[str, str] = {}
    for rel, key, raw in policy:
        buf += f"@@ {rel}\n".encode()
        if raw is None:
            items[key] = UNREADABLE
            continue
        buf += raw
        items[key] = digest(raw)
    policy_hash = digest(bytes(buf))
    for name, raw in snaps:
        buf += f"@@ snapshots/{name}\n".encode()
        key = f"snap:{name[:-5] if len(name) > 5 else name}"  # Path.stem: `.json` keeps it all
        if pinned and key in pinned:
            pin = items[key] = pinned[key]
            if pin != UNREADABLE:
                buf += pin.encode("utf-8", "surrogatepass") + b"\n"
            continue
        if raw is None:
            items[key] = UNREADABLE
            continue
        try:
            # strict: a hand-made snapshot with a lone surrogate or NaN hashes as raw bytes
            value = jsonio.safe_loads(raw, max_int_digits=4000)
        except ValueError:
            buf += raw
            items[key] = "#" + digest(raw)
            continue
        sig = jsonio.canonical(wake_signal(value))
        buf += sig.encode() + b"\n"
        items[key] = sig
    return digest(bytes(buf)), policy_hash, items


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def _files(d: str, suffix: str) -> list[str]:
    """Names in `d` ending in `suffix` that are regular files (through a symlink too), sorted,
    as Path.glob lists them (dot files included)."""
    try:
        names = os.listdir(d)
    except OSError:
        return []
    return sorted(n for n in names if n.endswith(suffix) and os.path.isfile(where.join(d, n)))


FLAP_FILE = ".signal-flap.json"  # Paths.signal_flap: loop/flap's record


def pins_at(data: str) -> dict[str, str]:
    """Item key -> the signal a flapping sensor is pinned to (loop/flap's `.signal-flap.json`),
    so a reader outside the beat hashes the world the beat gates on. A missing or damaged
    record pins nothing (the beat re-baselines it the same way)."""
    raw = _read(where.join(data, FLAP_FILE))
    if raw is None:
        return {}
    try:
        obj = jsonio.safe_loads(raw)
    except ValueError:
        return {}
    items = (
        obj.get("items") if isinstance(obj, dict) and obj.get("v") == 2 else None
    )  # flap.VERSION
    if not isinstance(items, dict):
        return {}
    return {
        k: e["pinned"]
        for k, e in items.items()
        if isinstance(e, dict) and e.get("flapping") is True and isinstance(e.get("pinned"), str)
    }


def world_hash_at(data: str, damped: bool = True) -> str:
    """read_world(Paths.at(data)).hash, from the data dir as a string; `damped`: with each
    flapping sensor's signal pinned, as the beat gates on it (loop/flap)."""
    policy: Policy = []
    playbook = where.join(data, where.PLAYBOOK)
    if os.path.isfile(playbook):
        policy.append(("PLAYBOOK.md", "playbook", _read(playbook)))
    goals = where.join(data, where.GOALS)
    for n in _files(goals, ".md"):
        stem = n[: n.rfind(".")] if n.rfind(".") > 0 else n
        policy.append((f"goals/{n}", f"goal:{stem}", _read(where.join(goals, n))))
    snaps_dir = where.join(data, where.SNAPSHOTS)
    snaps: Snaps = [(n, _read(where.join(snaps_dir, n))) for n in _files(snaps_dir, ".json")]
    return hash_world(policy, snaps, pinned=pins_at(data) if damped else None)[0]
