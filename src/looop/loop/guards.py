"""Guard state between beats: committed hash, failure backoff, last failure, the coalesce
window. All fail closed."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from looop.home import store
from looop.home.delays import backoff_delay as backoff_delay
from looop.home.delays import failed_at
from looop.home.errors import CorruptState
from looop.home.paths import Paths

ASSUMED_FAILS_WHEN_CORRUPT = 4
_HEX32 = re.compile(r"[0-9a-f]{32}")


def read_last_hash(paths: Paths) -> str:
    """The committed world hash; '' when none. CorruptState when unreadable (idle, never re-run)."""
    try:
        raw = store.read_regular(paths.last_tick_hash, 4096)
    except FileNotFoundError:
        return ""
    except OSError as e:
        raise CorruptState(f"cannot read {paths.last_tick_hash}: {e.strerror}") from e
    text = raw.decode("utf-8", "replace").strip()
    if text and not _HEX32.fullmatch(text):
        raise CorruptState(
            f"{paths.last_tick_hash} holds {text[:40]!r}, not a world hash; delete it to re-decide"
        )
    return text


def commit_hash(paths: Paths, h: str) -> None:
    store.atomic_write(paths.last_tick_hash, h + "\n")


@dataclass(frozen=True)
class Backoff:
    fails: int
    ts: float  # on today's wall clock (a backward step is taken out: delays.failed_at)
    phash: str
    repaired: bool = False
    mono: float | None = None  # the monotonic clock at the failure


def read_backoff(paths: Paths, now: float, mono_now: float | None = None) -> Backoff | None:
    """A corrupt record is repaired as several failures: never a free retry storm.

    mono_now: the monotonic clock now. A record stamped after `now` (the wall clock stepped
    back, or a hand edit) is measured on the monotonic clock it carries, or else restamped
    now: the wait is never longer than the backoff it was made with."""
    try:
        obj = store.read_json_object(paths.backoff)
    except CorruptState:
        obj = {}
    if obj is None:
        return None
    fails, ts, ph = obj.get("fails"), obj.get("ts"), obj.get("phash", "")
    if not isinstance(fails, int) or not isinstance(ts, int | float) or not isinstance(ph, str):
        b = Backoff(ASSUMED_FAILS_WHEN_CORRUPT, now, "", repaired=True, mono=mono_now)
        write_backoff(paths, b)
        return b
    mono = obj.get("mono")
    mono = float(mono) if isinstance(mono, int | float) and not isinstance(mono, bool) else None
    fails = max(0, min(fails, 1_000_000))
    at = failed_at(float(ts), mono, now, mono_now)
    if at is None:  # restamp, so the next beat does not start the wait over again
        b = Backoff(fails, now, ph, mono=mono_now)
        write_backoff(paths, b, str(obj.get("hash") or ""))
        return b
    return Backoff(fails, at, ph, mono=mono)


def write_backoff(paths: Paths, b: Backoff, world_hash: str = "") -> None:
    rec: dict[str, Any] = {"v": 1, "fails": b.fails, "ts": int(b.ts), "phash": b.phash}
    if b.mono is not None:
        rec["mono"] = round(b.mono, 3)
    store.write_json(paths.backoff, {**rec, "hash": world_hash})


def record_failure(
    paths: Paths, now: float, world_hash: str, policy_hash: str, mono: float | None = None
) -> int:
    """Consecutive failures regardless of hash movement; only a success clears them.
    mono: the monotonic clock now, so a backward wall-clock step cannot stretch the wait."""
    n = (read_record(paths.backoff) or {}).get("fails", 0)
    fails = (n if isinstance(n, int) and n >= 0 else ASSUMED_FAILS_WHEN_CORRUPT) + 1
    write_backoff(paths, Backoff(fails, now, policy_hash, mono=mono), world_hash)
    return fails


def clear_backoff(paths: Paths) -> None:
    store.remove(paths.backoff)


def write_last_failure(
    paths: Paths, now: float, run_id: str, code: str, error: str, fails: int
) -> None:
    rec = {"v": 1, "ts": int(now), "run_id": run_id, "code": code, "fails": fails}
    store.write_json(paths.last_failure, {**rec, "error": error[:2000]})


def read_last_failure(paths: Paths) -> dict[str, Any] | None:
    try:
        return store.read_json_object(paths.last_failure)
    except CorruptState:
        return {"code": "unknown", "error": "the last failure record was unreadable"}


def read_record(path: Path) -> dict[str, Any] | None:
    """A record, or None when it is missing or unreadable."""
    try:
        return store.read_json_object(path)
    except CorruptState:
        return None


def read_last_world(paths: Paths) -> dict[str, str] | None:
    items = (read_record(paths.last_world) or {}).get("items")
    if not isinstance(items, dict):
        return None
    return {str(k): str(v) for k, v in items.items()}


def write_last_world(paths: Paths, now: float, items: dict[str, str]) -> None:
    store.write_json(paths.last_world, {"v": 1, "ts": int(now), "items": items})


NUDGE_MIN_SECS = 5


def note_noop(paths: Paths, now: float, world_hash: str | None) -> None:
    """A noop remembers the world it judged; any other move forgets it."""
    if world_hash is None:
        store.remove(paths.noop_at)
    else:
        store.write_json(paths.noop_at, {"v": 1, "ts": int(now), "hash": world_hash})


def noop_expired(paths: Paths, world_hash: str, now: float, ttl: int) -> bool:
    """True when the unchanged world was last judged by a noop more than `ttl` seconds ago:
    one wrong noop must not park a world state forever."""
    if ttl <= 0:
        return False
    rec = read_record(paths.noop_at)
    ts = rec.get("ts") if rec else None
    if not rec or rec.get("hash") != world_hash or not isinstance(ts, int):
        return False
    if ts > now:  # stamped before the wall clock stepped back: its age counts from now
        note_noop(paths, now, world_hash)  # restamped, or the TTL would wait out the step
        return False
    return now - ts >= ttl


def set_next_wake(paths: Paths, now: float, secs: int | None, cap: int) -> None:
    """Persist the decider's nudge so a restart or an idle beat in between cannot lose it."""
    if secs is None:
        return
    secs = max(NUDGE_MIN_SECS, min(secs, cap))
    store.write_json(paths.next_wake, {"v": 1, "at": int(now) + secs, "secs": secs})


def next_wake(paths: Paths, now: float | None = None) -> float | None:
    """When the decider's nudge falls due. Never later than `now` plus the nudge it asked
    for: a wall clock stepped back behind the stamp must not hold the nudge for the step
    (the pulse, the one caller that passes `now`, restamps the record)."""
    rec = read_record(paths.next_wake)
    if rec is None:
        return None
    at, secs = rec.get("at"), rec.get("secs")
    if not isinstance(at, int | float):
        return None
    if now is not None and isinstance(secs, int | float) and at > now + secs:
        at = int(now) + int(secs)  # restamped, or each beat would start the wait over
        store.write_json(paths.next_wake, {**rec, "at": at})
    return float(at)


def clear_next_wake(paths: Paths) -> None:
    store.remove(paths.next_wake)


# The coalesce window: changes that arrive within `coalesce` seconds make one decide, the
# window kept in the state file `.coalesce.json` from the change that opened it to the beat at
# its end. The window's state, not a gate: the beat's gate asks how long is left
# (`_gate_coalesce`), and an unchanged world closes it.


COALESCE_FILE = ".coalesce.json"


def coalesce_left(paths: Paths, now: float, slept: float, window: int) -> int:
    """Changes that arrive within `coalesce` seconds make one decide. The first change opens
    a window at the earliest moment it can have arrived (the pulse's last beat, which did not
    see it); the beat at the window's end decides on the world as it is then. A change a beat
    finds after a sleep as long as the window is already that old: it decides at once, so no
    decide waits longer than the window for coalescing. Seconds the beat should still wait
    (0: decide now); closes the window when it has ended."""
    path = paths.state(COALESCE_FILE)
    if slept >= window:
        store.remove(path)
        return 0
    rec = read_record(path) or {}
    since = rec.get("since")
    if not isinstance(since, int | float) or isinstance(since, bool) or since > now:
        # no window (or a stamp from the future: the clock stepped back): the change
        # arrived after the last beat, which slept `slept` seconds before this one
        since = now - slept
        store.write_json(path, {"v": 1, "since": since})
    left = since + window - now
    if left <= 0:
        store.remove(path)
        return 0
    return max(1, math.ceil(left))


def coalesce_close(paths: Paths) -> None:
    """No window open: a forced beat decides now, or the change undid itself."""
    store.remove(paths.state(COALESCE_FILE))
