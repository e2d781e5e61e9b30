"""The world as the loop sees it: one read yields the hash and the named items for WHAT CHANGED."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from looop.core import jsonsafe
from looop.core.hashing import canonical_json, fnv1a_128, wake_signal
from looop.core.paths import Paths
from looop.core.text import clip

UNREADABLE = "!unreadable"


@dataclass(frozen=True)
class World:
    hash: str
    policy_hash: str
    items: dict[str, str]  # playbook / goal:<id> -> content hash; snap:<name> -> wake signal


def _policy_files(paths: Paths) -> list[Path]:
    files = [paths.playbook]
    try:
        files += sorted(p for p in paths.goals.glob("*.md") if p.is_file())
    except OSError:
        pass
    return files


def read_world(paths: Paths) -> World:
    """Hash PLAYBOOK + goals (raw) and every snapshot's wake signal, in the exact core §9 layout."""
    buf = bytearray()
    items: dict[str, str] = {}
    for f in _policy_files(paths):
        if not f.is_file():
            continue
        rel = paths.rel(f)
        buf += f"@@ {rel}\n".encode()
        key = "playbook" if f == paths.playbook else f"goal:{f.stem}"
        try:
            raw = f.read_bytes()
        except OSError:
            items[key] = UNREADABLE
            continue
        buf += raw
        items[key] = fnv1a_128(raw)
    policy_hash = fnv1a_128(bytes(buf))
    try:
        snaps = sorted(p for p in paths.snapshots.glob("*.json") if p.is_file())
    except OSError:
        snaps = []
    for s in snaps:
        buf += f"@@ snapshots/{s.name}\n".encode()
        key = f"snap:{s.stem}"
        try:
            raw = s.read_bytes()
        except OSError:
            items[key] = UNREADABLE
            continue
        try:
            # strict: a hand-made snapshot with a lone surrogate or NaN hashes as raw bytes
            value = jsonsafe.loads(raw, max_int_digits=4000)
        except ValueError:
            buf += raw
            items[key] = "#" + fnv1a_128(raw)
            continue
        sig = canonical_json(wake_signal(value))
        buf += sig.encode() + b"\n"
        items[key] = sig
    return World(hash=fnv1a_128(bytes(buf)), policy_hash=policy_hash, items=items)


def describe_changes(old: dict[str, str] | None, new: dict[str, str], cap: int = 200) -> list[str]:
    """Lines for WHAT CHANGED: what woke the loop since the last committed decision."""
    if old is None:
        return ["(first decision on record: everything below is new)"]
    out: list[str] = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        if before is None:
            out.append(f"+ {key} appeared")
        elif after is None:
            out.append(f"- {key} removed")
        elif key.startswith("snap:"):
            out.append(f"~ {key} signal: {clip(before, 240)} → {clip(after, 240)}")
        else:
            out.append(f"~ {key} edited (body below)")
    if len(out) > cap:
        out = [*out[:cap], f"(… {len(out) - cap} more changes not listed)"]
    return out
