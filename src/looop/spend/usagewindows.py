"""Usage windows for the whole fleet: which accounts are at their provider's usage limit, until
when, and the worker starts held for them.

An account is a runner and the credentials its CLI runs with (the CLI's own config home, and a
fingerprint of an API key in the environment, never the key). `.usage-windows.json` in the data dir
(atomic, under its lock) holds one window per limited account: its reset, the line that said so,
who saw it first (a decide: loop/windowwork.record; or the beat reading a worker's screen:
loop/windowwork) and the workers that stopped on it. A start on a limited account is held as
`scheduled/<id>.json` (the start as asked, its reset and why) instead of failing; at the reset the
beat continues the stopped workers on their recorded conversations and makes the held starts
(loop/windowwork). A corrupt file is one line naming it; the beat's next sighting writes it afresh
(a lost window costs one call that hits the limit again).

Light (no typing, pathlib or datetime): `ls` and `status` read it on their fast paths."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from looop.home import store, where
from looop.home.errors import CorruptState
from looop.home.hashing import digest
from looop.home.locks import dir_lock
from looop.home.stamps import until_text
from looop.runners import profile, program

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

    from looop.home.clock import Clock

FILE = where.USAGE_WINDOWS
HELD_DIR = where.USAGE_HELD
LOCK = "usage-windows"
VERSION = 1
MAX_WINDOWS = 256  # accounts kept; the soonest resets win past it
MAX_STOPPED = 256  # workers remembered per window


class Account:
    """A runner and the credentials its CLI runs with: `key` (what windows are kept by) and
    `who` (how it is shown: the CLI, its home, a key's fingerprint)."""

    __slots__ = ("key", "runner", "who")

    def __init__(self, runner: str, who: str, key: str) -> None:
        self.runner, self.who, self.key = runner, who, key


class Window:
    """One limited account: until when (unix seconds), what was said, who saw it first, who
    saw it at all (`sources`), and the workers that stopped on it."""

    __slots__ = ("key", "runner", "said", "seen_by", "since", "sources", "stopped", "until", "who")

    def __init__(self, obj: dict[str, Any]) -> None:
        self.key, self.runner, self.who = str(obj["key"]), str(obj["runner"]), str(obj["who"])
        self.until, self.since = float(obj["until"]), float(obj["since"])
        self.said, self.seen_by = str(obj.get("said") or ""), str(obj.get("seen_by") or "")
        self.stopped: list[str] = [str(w) for w in obj.get("stopped") or []]
        self.sources: list[str] = [str(w) for w in obj.get("sources") or [self.seen_by]]

    @property
    def confirmed(self) -> bool:
        """Seen by more than one worker's screen (which a worker can print itself): by a
        decide, or by a second worker. Until then it holds only the worker that saw it."""
        return len(set(self.sources)) > 1 or not self.seen_by.startswith("worker ")

    def as_json(self) -> dict[str, Any]:
        row = {k: getattr(self, k) for k in self.__slots__}
        row["until"], row["since"] = int(self.until), int(self.since)
        return row


def account_of(runner: str, line: str, env: Mapping[str, str]) -> Account:
    """The account a runner's line spends from, as this environment gives it credentials."""
    prog = program(line)
    p = profile(prog)
    var, sub = p.id_home if p is not None else ("", "")
    home = env.get(var) if var else None
    if not home:
        home = os.path.join(env.get("HOME", ""), sub) if sub else env.get("HOME", "")
    secret = next((env[k] for k in (p.keys if p else ()) if env.get(k)), "")
    fp = ""
    if secret:
        fp = digest(secret.encode())[:8]  # hashlib loads only where a key is set
    who = f"{prog or '?'} at {home or '?'}" + (f", key {fp}" if fp else "")
    return Account(runner, who, f"{runner}|{prog}|{home}|{fp}")


def _path(data: str) -> str:
    return where.join(data, FILE)


def _bad(path: str, why: str) -> CorruptState:
    return CorruptState(
        f"usage windows {path} is corrupt ({why}) — delete it; the next limit seen writes it again"
    )


def _state(data: str) -> tuple[list[Window], dict[str, str]]:
    """The windows and the worker runs already seen stopped on a limit (id -> the run's start
    stamp: one run's message is one sighting, however long it stays on its screen)."""
    path = _path(data)
    try:
        obj = store.read_json_object(path)
    except CorruptState:
        raise _bad(path, "not a JSON object") from None
    if obj is None:
        return [], {}
    rows, seen = obj.get("windows"), obj.get("seen", {})
    if obj.get("v") != VERSION or not isinstance(rows, list) or not isinstance(seen, dict):
        raise _bad(path, f"not a version {VERSION} record")
    out = []
    for r in rows:
        try:
            if not isinstance(r, dict) or not isinstance(r.get("stopped", []), list):
                raise TypeError("not a window")
            out.append(Window(r))
        except (KeyError, TypeError, ValueError):
            raise _bad(path, "a window lacks its account or reset") from None
    return out, {str(k): str(v) for k, v in seen.items()}


def read_windows(data: str) -> list[Window]:
    """Every window recorded (passed ones too); CorruptState (one line) on a bad file."""
    return _state(data)[0]


def seen_runs(data: str) -> dict[str, str]:
    """Worker id -> the run already seen stopped on a limit (a corrupt file: none)."""
    try:
        return _state(data)[1]
    except CorruptState:
        return {}


def in_force(windows: Iterable[Window], key: str, now: float) -> Window | None:
    """The account's window while it lasts, once confirmed (Window.confirmed), else None."""
    return next((w for w in windows if w.key == key and now < w.until and w.confirmed), None)


def _write(data: str, windows: list[Window], seen: dict[str, str]) -> None:
    windows = sorted(windows, key=lambda w: w.until)[:MAX_WINDOWS]
    if not windows and not seen:
        store.remove(_path(data))
        return
    seen = dict(list(seen.items())[-MAX_STOPPED:])
    obj = {"v": VERSION, "windows": [w.as_json() for w in windows], "seen": seen}
    store.write_json(_path(data), obj)


def _read_for_write(data: str) -> tuple[list[Window], dict[str, str]]:
    try:
        return _state(data)
    except CorruptState:
        return [], {}  # written afresh: the sighting is what counts


def _lock(data: str) -> dir_lock:
    return dir_lock(where.join(data, f"{where.LOCKS}/{LOCK}"))


def mark(
    data: str,
    acct: Account,
    until: float,
    said: str,
    seen_by: str,
    now: float,
    run: tuple[str, str] | None = None,
) -> tuple[Window, bool]:
    """The account limited until `until` (a later reset said again extends it); `run`: the
    worker (id, run start stamp) that stopped on it. Returns the window and whether it is
    new. A corrupt file is written afresh."""
    with _lock(data):
        windows, seen = _read_for_write(data)
        was = next((w for w in windows if w.key == acct.key and now < w.until), None)
        # a window passed but not yet tended hands its stopped workers on: continued later
        passed = [x for w in windows if w.key == acct.key and w is not was for x in w.stopped]
        windows = [w for w in windows if w.key != acct.key]
        if was is None:
            w = Window(
                {"key": acct.key, "runner": acct.runner, "who": acct.who, "until": until,
                 "since": now, "said": said, "seen_by": seen_by, "stopped": passed}
            )  # fmt: skip
        else:
            w = was
            if not w.confirmed and seen_by not in w.sources:  # confirmed: its reset, not the
                w.until, w.said = until, said  # lone screen's (which may be a worker's lie)
            elif until > w.until:
                w.until, w.said = until, said
            if seen_by not in w.sources:
                w.sources = [*w.sources, seen_by][-MAX_STOPPED:]
        if run is not None:
            seen.pop(run[0], None)
            seen[run[0]] = run[1]
            if run[0] not in w.stopped:
                w.stopped = [*w.stopped, run[0]][-MAX_STOPPED:]
        _write(data, [*windows, w], seen)
    return w, was is None


def lift(data: str, keys: Iterable[str]) -> None:
    """Those accounts' windows gone (their reset came, or a human lifted them)."""
    gone = set(keys)
    with _lock(data):
        windows, seen = _read_for_write(data)
        _write(data, [w for w in windows if w.key not in gone], seen)


def forget_runs(data: str, keep: Iterable[str]) -> None:
    """Seen runs of workers no longer listed dropped (the file stays bounded)."""
    with _lock(data):
        windows, seen = _read_for_write(data)
        kept = set(keep)
        if set(seen) - kept:
            _write(data, windows, {k: v for k, v in seen.items() if k in kept})


# -- starts held for a reset ------------------------------------------------------------------


def _held_path(data: str, wid: str) -> str:
    return where.join(where.join(data, HELD_DIR), f"{wid}.json")


def hold(data: str, wid: str, w: Window, request: dict[str, Any], now: float) -> str:
    """Keep a start for its account's reset (the latest ask for this id wins); the reason."""
    reason = f"account {w.runner} ({w.who}) is at its usage limit"
    store.write_json(
        _held_path(data, wid),
        {"v": VERSION, "id": wid, "key": w.key, "runner": w.runner, "until": int(w.until),
         "since": int(now), "reason": reason, "request": request},
    )  # fmt: skip
    return reason


def unhold(data: str, wid: str) -> bool:
    return store.remove(_held_path(data, wid))


def read_held(data: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The starts held, by id, and one line for each held file that is not one looop wrote
    (left where it is: the others go on without it)."""
    folder = where.join(data, HELD_DIR)
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return [], []
    out, bad = [], []
    for name in names:
        if not name.endswith(".json") or name.startswith("."):
            continue
        path = where.join(folder, name)
        try:
            rec = store.read_json_object(path)
        except CorruptState:
            rec = {}
        if rec is None:
            continue  # removed meanwhile
        ok = rec.get("v") == VERSION and rec.get("id") == name[: -len(".json")]
        ok = ok and isinstance(rec.get("key"), str) and isinstance(rec.get("request"), dict)
        if not (ok and isinstance(rec.get("until"), int | float)):
            bad.append(
                f"held start {path} is not one looop wrote — delete it, then start the worker again"
            )
            continue
        out.append(rec)
    return out, bad


def held_rows(data: str, clock: Clock) -> list[dict[str, Any]]:
    """The held starts as `ls` rows: health `scheduled until HH:MM`, state `scheduled`, the
    reason as their note (a corrupt one is left to `status`, which says it in one line)."""
    held, _ = read_held(data)
    out = []
    for h in held:
        t = float(h["until"])
        until = f"scheduled until {until_text(clock.local_tm(t), t - clock.now())}"
        out.append(_row(str(h["id"]), until, str(h.get("runner") or ""), str(h.get("reason")), h))
    return out


def _row(wid: str, health: str, label: str, note: str, h: Any) -> dict[str, Any]:
    return {
        "id": wid, "health": health, "state": "scheduled", "label": label, "note": note,
        "until": int(h["until"]) if h else None, "alive": False, "verify": None,
        "since": int(h["since"]) if h and isinstance(h.get("since"), int | float) else None,
        "up_s": None, "uptime_s": None, "idle_s": None, "ask_age_s": None,
        "pending_tells": 0, "exit_code": None, "started_at": None, "spend_usd": None,
        "metered": None, "outcome": None,
    }  # fmt: skip


def view(data: str, clock: Clock) -> tuple[list[dict[str, Any]], str | None]:
    """What `status`, the web and /metrics show: each window in force with the starts held
    for it (`until_at`: its reset as a face says it), and a one-line error for a corrupt
    record (None: none)."""
    error, now = None, clock.now()
    try:
        windows = [w for w in read_windows(data) if now < w.until]
    except CorruptState as e:
        windows, error = [], str(e)
    held, bad = read_held(data)
    error = error or (bad[0] if bad else None)
    out = []
    for w in windows:
        row = w.as_json()
        row["held"] = [str(h["id"]) for h in held if h["key"] == w.key]
        row["confirmed"] = w.confirmed
        row["until_at"] = until_text(clock.local_tm(w.until), w.until - now)
        out.append(row)
    return out, error
