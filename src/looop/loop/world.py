"""The world as the loop sees it: one read yields the hash and the named items for WHAT CHANGED."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from looop.core.text import clip
from looop.home.paths import Paths
from looop.home.worldhash import hash_world
from looop.sessions.state import Kept
from looop.views.workerrows import Ends

if TYPE_CHECKING:
    from looop.core.readings import Reading
    from looop.home.store import Folders

Policy = list[tuple[str, str, bytes | None]]  # (rel path, item key, bytes or unreadable)
Snaps = list[tuple[str, bytes | None]]  # (file name, bytes or unreadable)


@dataclass(frozen=True)
class World:
    hash: str
    policy_hash: str
    items: dict[str, str]  # playbook / goal:<id> -> content hash; snap:<name> -> wake signal
    # the bytes it was hashed from: a flapping sensor's pinned signal re-hashes without a re-read
    raw: tuple[Policy, Snaps] | None = field(default=None, repr=False, compare=False)

    def pinned(self, pins: dict[str, str]) -> World:
        """This world with each pinned item's signal in place of its own (the world the loop
        wakes on while those sensors flap); itself when nothing is pinned."""
        if not pins or self.raw is None:
            return self
        world_hash, policy_hash, items = hash_world(*self.raw, pinned=pins)
        return World(world_hash, policy_hash, items, self.raw)


def _is_snapshot(entry: os.DirEntry[str]) -> bool:
    with contextlib.suppress(OSError):
        return entry.name.endswith(".json") and entry.is_file()
    return False


class WorldMemo:
    """The last world read and the raw bytes it was read from, kept by the pulse across
    beats: an unchanged read (a skip beat's) is answered without parsing or hashing again.
    `quiet`: each worker's run and output size whose tail the usage windows read last without
    a limit in it (loop/windowwork): unmoved output is not read again. `kept`: the finished
    workers the beat's listing read, each under its folder's stat (sessions/state.list_sessions):
    one that ended beats ago is not read again; `ends`: the rows the sessions probe built of
    them, kept while all they were built from stays (views/workerrows.worker_rows);
    `records`: the outcome records and those of the workers away, while their folders stay
    as they were (home/store.json_objects); `drawn`: each probe's last reading, whose bytes an
    equal value keeps (sense/probes.run_probes)."""

    __slots__ = ("drawn", "ends", "kept", "key", "quiet", "records", "world")

    def __init__(self) -> None:
        self.key: tuple[object, ...] | None = None
        self.world: World | None = None
        self.quiet: dict[str, tuple[str, int]] = {}
        self.kept = Kept()
        self.ends = Ends()
        self.records: Folders = {}
        self.drawn: dict[str, Reading] = {}


def read_world(
    paths: Paths, memo: WorldMemo | None = None, known: Mapping[str, bytes] | None = None
) -> World:
    """Hash PLAYBOOK + goals (raw) and every snapshot's wake signal, in the exact core §9 layout.
    With `memo`, the same bytes as last time give last time's World (the same object).
    `known`: snapshot file name -> the bytes this beat just wrote or found there (under the
    beat's lock nothing else writes them), taken instead of reading the file again."""
    goals: list[Path] = []
    with contextlib.suppress(OSError):
        goals = sorted(p for p in paths.goals.glob("*.md") if p.is_file())
    policy: Policy = [
        (paths.rel(f), "playbook" if f == paths.playbook else f"goal:{f.stem}", _bytes(f))
        for f in (paths.playbook, *goals)
        if f.is_file()
    ]
    # every regular `snapshots/*.json` (a symlink to one counts, and a dot file too, as
    # Path.glob lists them), by name
    try:
        with os.scandir(paths.snapshots) as it:
            found = sorted((e.name, e.path) for e in it if _is_snapshot(e))
    except OSError:
        found = []
    snaps: Snaps = []
    for name, path in found:
        raw = known.get(name) if known else None
        snaps.append((name, _bytes(Path(path)) if raw is None else raw))
    if memo is None:
        return _world(policy, snaps)
    seen = _raw_key(policy, snaps)
    if memo.world is None or seen != memo.key:
        memo.key, memo.world = seen, _world(policy, snaps)
    return memo.world


def _bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _raw_key(policy: Policy, snaps: Snaps) -> tuple[object, ...]:
    """Every name and byte the world is made of, unambiguously: compared, not joined, so a
    snapshot whose bytes are the very ones of last time (the beat keeps an unchanged
    reading's) costs no copy and no compare, however big the fleet it lists."""
    return (*((rel, raw) for rel, _, raw in policy), None, *snaps)


def _world(policy: Policy, snaps: Snaps) -> World:
    world_hash, policy_hash, items = hash_world(policy, snaps)
    return World(hash=world_hash, policy_hash=policy_hash, items=items, raw=(policy, snaps))


def describe_changes(old: dict[str, str] | None, new: dict[str, str]) -> list[str]:
    """Lines for WHAT CHANGED: what woke the loop since the last committed decision, every one
    (the prompt shows the first 200 and counts the rest: one cap, so the count is right)."""
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
    return out
