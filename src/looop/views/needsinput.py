"""A worker that waits for a human on its own screen: at its CLI's permission/approval prompt,
idle at its input box with its turn done, or (any worker) at a prompt its supervisor saw when
its output went quiet (home/screenrules.prompt, kept in its status.json). Neither busy nor
stuck: health `needs-input`.
Also a worker at its provider's usage limit (`limited until HH:MM`, spend/limits).

Cheap by construction: a worker's screen is read (one `screenshot` request to its
supervisor, bounded in time) only when its output.log changed since the last look; the
verdict is kept in `.needs-input.json` keyed by the log's size and mtime, so an idle fleet
costs one stat per worker per beat and never wakes a supervisor's screen emulator; a log that
grew by a repeat of the bytes just before it (the same screen redrawn) keeps its verdict for
one small read. Reading and judging a screen, and telling the human, is the beat's work
(workers/needsinput: the beat hands refine its Looker); this half keeps the verdicts.

Light at import (no pathlib, typing or re at module level): `looop ls` reaches it through
home/fleet on its fast path and reads the last beat's verdicts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from looop.home import jsonio, logfiles, store, where
from looop.home.errors import CorruptState
from looop.home.stamps import parse_utc
from looop.spend.limits import said_until

if TYPE_CHECKING:
    from typing import Any, Protocol

    from looop.home.clock import Clock

    class Looker(Protocol):
        """Reads a worker's live screen and judges it (workers/needsinput.Looker)."""

        def screen(self, data: str, wid: str) -> str | None: ...

        def judge(
            self,
            data: str,
            wid: str,
            sdir: str,
            text: str,
            custom: dict[str, tuple[str, ...]] | None,
        ) -> str | None: ...


HEALTH = "needs-input"
BUSY = ""  # a Looker's verdict on a screen that shows its CLI at work: never waiting
CACHE = ".needs-input.json"  # in <data>: per worker, the log it judged and the verdict
CACHE_VERSION = 3  # 3: an idle box seen keeps when it may count (`ready`)
LIMIT_TAIL = 4096  # a usage-limit message is the last thing a stopped agent printed
REPEAT_MAX = 16 * 1024  # a redraw this long or shorter is compared with the one before it
# An idle box counts only once it has stood this long with nothing printed: a CLI starved of
# CPU can hold its box still for two 1 s looks before its spinner or approval prompt comes.
IDLE_QUIET_S = 3.0
# ...and, until its CLI was seen at work, not before its worker has run this long: a starting
# CLI draws its box before it sends its brief, and on a loaded machine that box can stand still.
START_GRACE_S = 30.0


def _log_key(sdir: str) -> list[int] | None:
    """[logical size, mtime]: offsets that a rotation does not move (home/logfiles.py)."""
    try:
        got = logfiles.stat_log(sdir)
    except OSError:
        return None
    return None if got is None else [got[0], got[1]]


def _repeated(sdir: str, was: Any, key: list[int]) -> bool:
    """The log grew since the last look by exactly the bytes that came just before (a TUI
    redrawing the same screen: a blink, a repaint): the screen, and so its verdict, stand."""
    old = was.get("k") if isinstance(was, dict) else None
    if not (isinstance(old, list) and len(old) == 2 and isinstance(old[0], int)):
        return False
    n = key[0] - old[0]
    if n <= 0 or n > REPEAT_MAX or old[0] < n:
        return False
    try:
        with logfiles.open_view(sdir, old[0] - n) as view:
            raw = view.read(max(old[0] - n, view.start), 2 * n)
    except OSError:
        return False
    return len(raw) == 2 * n and raw[:n] == raw[n:]


def _read_cache(data: str) -> dict[str, Any]:
    try:
        obj = store.read_json_object(where.join(data, CACHE)) or {}
    except CorruptState:
        return {}
    w = obj.get("w") if obj.get("v") == CACHE_VERSION else None
    return w if isinstance(w, dict) else {}


def limited_until(sdir: str, clock: Clock) -> str | None:
    """HH:MM when the worker's output ends on its CLI's usage-limit message, else None."""
    try:
        raw = logfiles.tail(sdir, LIMIT_TAIL)
    except OSError:
        return None
    if b"limit" not in raw.lower():
        return None  # the usual case: no parser loaded at all

    return said_until(raw, clock)


def refine(
    data: str,
    rows: list[dict[str, Any]],
    sessions: dict[str, dict[str, Any]],
    clock: Clock,
    custom: dict[str, tuple[str, ...]] | None = None,
    look: Looker | None = None,
) -> None:
    """Turn a live busy/stuck row's health into `limited until HH:MM` or `needs-input` (with
    `needs_input`: what its screen says) in place. `sessions`: id -> the listing's fields
    (`dir`; `prompt`: what its screen asked when its output went quiet, sessions/lifecycle).
    `look` (the beat's, workers/needsinput) reads a screen only when its log changed since the
    verdict cached, judged with the runners' `custom` patterns; None (`looop ls`, which must
    stay light): never, the last beat's verdict stands."""
    cache = _read_cache(data)
    fresh: dict[str, Any] = {}
    for r in rows:
        if not r["alive"] or r["health"] not in ("busy", "stuck"):
            continue
        s = sessions.get(r["id"]) or {}
        sdir = s.get("dir") or where.join(where.join(data, where.SESSIONS), r["id"])
        until = limited_until(sdir, clock)
        if until is not None:
            r["health"] = f"limited until {until}"
            continue
        if isinstance(s.get("prompt"), str):  # its supervisor saw it quiet at a prompt
            _mark(r, s["prompt"])
            continue
        key = _log_key(sdir)
        if key is None:
            continue
        was = cache.get(r["id"])
        if isinstance(was, dict) and (was.get("k") == key or look is None):
            # an idle box seen counts when a look IDLE_QUIET_S later finds the log unchanged
            verdict = was.get("why") or (_quiet_idle(was, clock) if was.get("k") == key else None)
            if verdict is None and was.get("seen") is not None and was.get("k") == key:
                fresh[r["id"]] = was  # not quiet long enough yet: keep when it was first seen
                continue
        elif look is None:
            continue
        elif isinstance(was, dict) and _repeated(sdir, was, key):
            # the same redraw again: no screen read; an idle box still waits for a quiet look
            fresh[r["id"]] = {**was, "k": key}
            _mark(r, was.get("why"))
            continue
        else:
            text = look.screen(data, r["id"])
            if text is None:
                continue
            verdict = look.judge(data, r["id"], sdir, text, custom)
            entry = _looked(verdict, key, was, clock, s.get("started_at"))
            fresh[r["id"]] = entry
            _mark(r, entry["why"])
            continue
        fresh[r["id"]] = {**was, "k": key, "why": verdict}
        _mark(r, verdict)
    if look is not None and fresh != cache:
        _keep_cache(data, fresh)


def _looked(verdict: Any, key: list[int], was: Any, clock: Clock, started: Any) -> dict[str, Any]:
    """The cache entry for a screen just read and judged. `run`: the worker's start it
    judged; `busy`: its CLI was seen at work in that run."""
    same = isinstance(was, dict) and was.get("run") == started
    busy = verdict == BUSY or (same and was.get("busy") is True)
    if isinstance(verdict, str) and verdict.startswith("idle"):
        # a CLI starting or between steps draws its input box for a moment: idle counts
        # once the same box has shown IDLE_QUIET_S and a look finds nothing printed since
        # the last (a blinking cursor redraws it meanwhile); before its CLI was seen at work,
        # not until its worker has run START_GRACE_S
        at = _since(was, verdict, clock)
        born = parse_utc(started) if isinstance(started, str) and not busy else None
        # a stamp ahead of the clock (skew, a test's fixed clock): at most the grace
        young = 0.0 if born is None else START_GRACE_S - max(0.0, clock.now() - born)
        ready = max(at + IDLE_QUIET_S, clock.boottime() + young)
        seen = {"seen": verdict, "at": at, "ready": ready}
        return {"k": key, "why": None, **seen, "run": started, "busy": busy}
    return {"k": key, "why": verdict or None, "run": started, "busy": busy}


def _since(was: Any, verdict: str, clock: Clock) -> float:
    """When this idle box was first seen: at the last look too, then since that one's time."""
    at = was.get("at") if isinstance(was, dict) and was.get("seen") == verdict else None
    # boot time: another beat's process judges it
    return at if isinstance(at, (int, float)) else clock.boottime()


def _quiet_idle(was: dict[str, Any], clock: Clock) -> Any:
    """The idle box seen, once its `ready` time came (the log unchanged since the last look)."""
    at, ready = was.get("at"), was.get("ready")
    now = clock.boottime()
    if isinstance(at, (int, float)) and isinstance(ready, (int, float)) and at <= now < ready:
        return None  # (a reboot since, boot time behind it: it has stood that long)
    return was.get("seen")


def _mark(r: dict[str, Any], verdict: Any) -> None:
    """A verdict that names what the screen asks makes the row needs-input."""
    if isinstance(verdict, str):
        r["health"] = HEALTH
        r["needs_input"] = verdict


def _keep_cache(data: str, fresh: dict[str, Any]) -> None:
    try:
        # no fsync: after a crash a lost cache costs one screen read per worker
        body = jsonio.canonical({"v": CACHE_VERSION, "w": fresh}) + "\n"
        store.atomic_write(where.join(data, CACHE), body, durable=False)
    except OSError:
        pass  # a cache that cannot be kept costs a screen read next time, nothing more
