"""The spend state the breakers keep: the hourly decide cap (every decide attempt is stamped in
`.decide-ledger.json`; a rolling hour of them closes the cap until the oldest ages out), the
unmetered runs in a row (`.cost-unmetered.json`), and the lock every spend-state writer takes."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import TYPE_CHECKING

from looop.home import locks, store
from looop.home.errors import CorruptState
from looop.home.paths import Paths

if TYPE_CHECKING:
    from collections.abc import Iterator
    from contextlib import AbstractContextManager
    from typing import Any

UNMETERED_LIMIT = 3

DECIDE_WINDOW_S = 3600
# A decide ledger that cannot be read holds the cap closed this long (then it is empty again).
DECIDE_HOLD_S = 3600
# What decides_last_hour reports while held when it is not told the cap: above any sane cap.
DECIDE_HELD_COUNT = 1_000_000


def _read_decides(paths: Paths, now: float, repair: bool = True) -> tuple[list[float], float]:
    """(attempt stamps in the rolling hour, held_until). A corrupt ledger is repaired as held
    closed for an hour: fail closed, then heal on its own (a pure reader only reports it)."""
    try:
        obj = store.read_json_object(paths.decide_ledger)
        if obj is None:
            return [], 0.0
        raw, held = obj.get("attempts", []), obj.get("held_until", 0)
        if not isinstance(raw, list) or _amount_ts(held) is None:
            raise CorruptState("shape")
        stamps = [_amount_ts(t) for t in raw]
        if any(t is None for t in stamps):
            raise CorruptState("shape")
    except CorruptState:
        held_until = now + DECIDE_HOLD_S
        if repair:
            store.write_json(paths.decide_ledger, {"attempts": [], "held_until": held_until})
        return [], held_until
    lo, hi = now - DECIDE_WINDOW_S, now + DECIDE_WINDOW_S  # far-future stamps: a clock jump
    # A stamp after now was made no later than now (the wall clock stepped back since): it
    # counts as now, so it leaves the rolling hour an hour from now, not an hour plus the step;
    # a hold likewise never outlasts its own length.
    kept = [t for t in stamps if t is not None and lo < t <= hi]
    held_until = min(float(held), now + DECIDE_HOLD_S)
    if repair and (any(t > now for t in kept) or held_until < held):
        kept = [min(t, now) for t in kept]  # restamped, or the next read would wait it again
        rec: dict[str, Any] = {"attempts": kept}
        if held_until > now:
            rec["held_until"] = held_until
        store.write_json(paths.decide_ledger, rec)
    return [min(t, now) for t in kept], held_until


def _amount_ts(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def note_decide(paths: Paths, now: float) -> None:
    """Record one decide attempt (successful or not) in the rolling hour."""
    with spend_lock(paths):
        stamps, held = _read_decides(paths, now)
        stamps.append(round(now, 3))
        obj: dict[str, Any] = {"attempts": stamps[-100_000:]}
        if held > now:
            obj["held_until"] = held
        store.write_json(paths.decide_ledger, obj)


@contextlib.contextmanager
def _read_lock(paths: Paths) -> Iterator[bool]:
    """The spend lock for a reader, if it can be had: a data dir that is new (nothing to read)
    or read-only (no writer to race) is read without it, and without creating anything."""
    if not paths.decide_ledger.exists():
        yield False
        return
    try:
        lock = spend_lock(paths)
        lock.__enter__()
    except OSError:
        yield False
        return
    try:
        yield True
    finally:
        lock.__exit__(None, None, None)


def decides_last_hour(paths: Paths, now: float, cap: int | None = None) -> int:
    """Decide attempts in the last 3600 s. While a corrupt ledger holds the cap closed this is
    `cap` when given (else DECIDE_HELD_COUNT), so `count >= cap` idles the beat."""
    with _read_lock(paths) as locked:
        stamps, held = _read_decides(paths, now, repair=locked)
    if held > now:
        return max(len(stamps), cap if cap is not None and cap > 0 else DECIDE_HELD_COUNT)
    return len(stamps)


def decide_retry_in(paths: Paths, now: float, cap: int) -> int:
    """Whole seconds until one more decide fits under `cap` (0 when it fits now)."""
    with _read_lock(paths) as locked:
        stamps, held = _read_decides(paths, now, repair=locked)
    if held > now:
        return max(1, math.ceil(held - now))
    if cap <= 0 or len(stamps) < cap:
        return 0
    stamps.sort()
    oldest_to_drop = stamps[len(stamps) - cap]
    return max(1, math.ceil(oldest_to_drop + DECIDE_WINDOW_S - now))


def at(data: str) -> Paths:
    """The data dir's Paths, for statusspend's odd cases (it loads no pathlib itself)."""
    return Paths.at(Path(data))


def spend_lock(paths: Paths) -> AbstractContextManager[None]:
    # Our own lock file, not paths.state_lock: a caller holding that one must not deadlock here.
    return locks.dir_lock(paths.lock_dir / "spend")


def _read_unmetered(paths: Paths) -> tuple[int, str] | None:
    """(count, sig) or None when absent; CorruptState when unreadable or the wrong shape."""
    obj = store.read_json_object(paths.cost_unmetered)
    if obj is None:
        return None
    n, sig = obj.get("count"), obj.get("sig")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0 or not isinstance(sig, str):
        raise CorruptState(f"{paths.cost_unmetered} has the wrong shape")
    return n, sig


def record_unmetered(paths: Paths, sig: str) -> int:
    """One more consecutive unmetered run at `sig`; another signature restarts at 1."""
    with spend_lock(paths):
        try:
            prev = _read_unmetered(paths)
        except CorruptState:
            prev = (UNMETERED_LIMIT - 1, sig)  # fail closed: this run opens the breaker
        n = prev[0] + 1 if prev is not None and prev[1] == sig else 1
        store.write_json(paths.cost_unmetered, {"count": n, "sig": sig})
    return n


def clear_unmetered(paths: Paths) -> None:
    store.remove(paths.cost_unmetered)


def unmetered_count(paths: Paths, sig: str) -> int:
    """Consecutive unmetered runs at `sig` (0 when another signature holds the counter)."""
    try:
        got = _read_unmetered(paths)
    except CorruptState:
        return UNMETERED_LIMIT
    return got[0] if got is not None and got[1] == sig else 0


def unmetered_blocked(paths: Paths, sig: str) -> bool:
    """The breaker is open at `sig`. A corrupt counter fails closed: it is repaired as at the
    limit for this signature, so changing the runner (or a metered run) still heals it."""
    try:
        got = _read_unmetered(paths)
    except CorruptState:
        with spend_lock(paths):
            store.write_json(paths.cost_unmetered, {"count": UNMETERED_LIMIT, "sig": sig})
        return True
    return got is not None and got[1] == sig and got[0] >= UNMETERED_LIMIT
