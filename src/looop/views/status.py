"""A pure read of the loop's state for `looop status`: never starts or changes anything. What
events.jsonl says of the beats, and the time format status shows, are views/beatlog.py."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from looop.core.procstat import is_web
from looop.home import homes, revive, store, where
from looop.home.boxfolder import pending_asks
from looop.home.config import load_config, resolve_knobs
from looop.home.delays import backoff_delay, failed_at, limit_in_force
from looop.home.errors import WRITABLE_FIX, CorruptState, LooopError
from looop.home.locks import beat_holder_at
from looop.home.sessionfiles import list_light, lock_held, read_status, session_ids
from looop.home.where import runtime_base
from looop.runners.presets import default_config_obj
from looop.spend.savings import savings_view
from looop.spend.statusspend import spend_status
from looop.spend.usagewindows import view
from looop.views.beatlog import beat_records, last_beat, next_beat, paused_at, stamp, tail

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path
    from typing import Any

    from looop.home.clock import Clock
    from looop.home.config import Knobs
    from looop.home.paths import Paths
    from looop.spend.views import SpendError, SpendStatus
    from looop.views.shapes import (
        LastTick,
        LimitedView,
        SchedulesView,
        Stamp,
        StatusView,
        WorkerView,
    )


# No Ctx here: `looop status` imports little beyond click. Its reads take the data dir and
# config file as plain strings (home/where.py).


def _at(data: str, name: str) -> str:
    return where.join(data, name)


def _last_tick(data: str, clock: Clock) -> LastTick | None:
    """When the world hash was last committed (the last successful decide)."""
    p = _at(data, ".last-tick-hash")
    try:
        st = os.stat(p)
    except OSError:
        return None
    return {**stamp(clock, st.st_mtime), "hash": _text(p).strip()}


def _text(p: str | Path) -> str:
    """A small state file's text; '' when missing or not a file (status never fails on one)."""
    try:
        return store.read_text(p) or ""
    except OSError:
        return ""


def _retry(backoff: dict[str, Any] | None, knobs: Knobs | None, clock: Clock) -> Stamp | None:
    """When a backed-off beat may call the runner again (None when no backoff holds)."""
    if not backoff or knobs is None:
        return None
    fails, ts, mono = backoff.get("fails"), backoff.get("ts"), backoff.get("mono")
    if not isinstance(fails, int) or fails <= 0 or not isinstance(ts, int | float):
        return None

    now = clock.now()
    mono = float(mono) if isinstance(mono, int | float) else None
    at = failed_at(float(ts), mono, now, clock.monotonic())
    # a stamp after a backward clock step: the next beat restarts the wait from now
    wait = backoff_delay(fails, knobs.num("backoff_max_secs"))
    return stamp(clock, (now if at is None else at) + wait)


def _limited(data: str, clock: Clock) -> LimitedView | None:
    """The runner's provider usage limit still waited out (loop/alerts), else None."""
    rec = _read_obj(_at(data, where.PROVIDER_LIMIT))
    if not rec:
        return None

    # a dropped schedule lifts the wait: the next changed world calls the runner again
    scheduled = os.path.isfile(_at(data, f"schedules/{where.LIMIT_SCHEDULE}.json"))
    if not limit_in_force(rec, clock.now(), scheduled):
        return None
    until = rec["until"]
    runner, said = rec.get("runner"), rec.get("said")
    return {
        **stamp(clock, until),
        "runner": runner if isinstance(runner, str) else None,
        "said": said if isinstance(said, str) else None,
    }


def _healing(data: str) -> dict[str, Any]:
    """The pulse session's restart record: how often its supervisor restarted it, why it
    last ended, and whether it is waiting to start it again right now — or, its supervisor
    lost while the pulse is wanted up, that cause and the revival (home/revive.py)."""
    sdir = where.join(_at(data, where.SESSIONS), "pulse")
    st = read_status(sdir) or {}
    n = st.get("restarts")
    n = n if isinstance(n, int) and not isinstance(n, bool) else 0
    cause = st.get("last_cause")
    waiting = st.get("state") == "running" and st.get("child_pid") is None
    lost = revive.pending(data)
    if lost is not None:  # the latest cause is the loss, not an earlier, healed restart's
        error = (revive.read_wanted(data) or {}).get("error")
        said = f"; it could not start again: {error}" if isinstance(error, str) else ""
        return {"restarts": n + 1, "last_cause": lost + said, "restarting": True, "revived": True}
    return {
        "restarts": n,
        "last_cause": cause if isinstance(cause, str) else None,
        "restarting": waiting and st.get("restart_in_s") is not None and lock_held(sdir),
        "revived": False,
    }


def _read_obj(path: str) -> dict[str, Any] | None:
    try:
        return store.read_json_object(path)
    except CorruptState as e:
        return {"error": str(e)}


def _workers(
    data: str, all_workers: bool, light: list[dict[str, Any]] | None = None
) -> tuple[list[WorkerView], int]:
    """The workers (the live ones alone unless `all_workers`: a finished session is then
    passed at one stat) and how many have finished; `light`: list_light's answer when the
    caller read it (the web's kept fleet read)."""
    try:
        ids = session_ids(data)  # one listing: the live ones read, the rest counted
        sessions = list_light(data, not all_workers, ids) if light is None else light
    except OSError as e:
        return [{"error": f"cannot list sessions: {e.strerror}"}], 0
    workers = [s for s in sessions if s["id"] != "pulse"]
    if all_workers:
        finished = sum(1 for s in workers if not s["alive"])
    else:  # every dir not listed as live
        finished = sum(1 for i in ids if i != "pulse") - len(workers)
    views: list[WorkerView] = [
        {"id": s["id"], "state": s["state"], "label": s["label"], "alive": s["alive"],
         "exit_code": s["exit_code"], "flagged": bool(s["note"]), "note": s["note"],
         "sandboxed": where.sandboxed(data, s["id"])}
        for s in workers
    ]  # fmt: skip
    return views, max(0, finished)


def _schedules(data: str) -> SchedulesView:
    # the probe's last reading: what the pulse saw on its last beat, at no cost now
    snap = _read_obj(where.join(_at(data, where.SNAPSHOTS), "sys-schedules.json")) or {}
    raw = snap.get("signal")
    signal: dict[str, Any] = raw if isinstance(raw, dict) else {}
    names = sorted(signal)
    due = [n for n in names if signal[n] == "due"]
    invalid = [n for n in names if signal[n] == "invalid"]
    return {"names": names, "due": due, "invalid": invalid}


def _asks(data: str) -> list[str]:
    """The asks with no answer as they are now (the reader `looop asks` and the web's /asks
    use), never the last beat's snapshot: an answer, or a new ask, shows at once."""
    return sorted(str(a.get("id")) for a in pending_asks(data))


def file_stem(name: str) -> str:
    """PurePath(name).stem."""
    i = name.rfind(".")
    return name[:i] if 0 < i < len(name) - 1 else name


def _goals(data: str) -> list[str]:
    """The goal files' names, as sorted(p.stem for p in goals.glob("*.md")) lists them."""
    try:
        names = os.listdir(_at(data, "goals"))
    except OSError:
        return []
    return sorted(file_stem(n) for n in names if n.endswith(".md"))


def pulse_pid(paths: Paths) -> str:
    """The running pulse's pid as written in .lock/pid ('' when none)."""
    return _text(paths.pid_file).strip()


def beat_holder(paths: Paths) -> tuple[str, str] | None:
    """Who holds the beat lock: ("pulse", pid), ("tick", pid) or None (home/locks.py)."""
    return beat_holder_at(os.fspath(paths.data))


FULL_BELOW = 1 << 20  # free bytes under which the data dir's disk reads as full


CLOCK_WAKES = (
    "inotify is used up (fs.inotify.max_user_watches or max_user_instances): changes wake the "
    "pulse only on its interval — raise them with sysctl"
)


def disk_full(data: str) -> str:
    """One line when the data dir cannot take a beat's files: read-only, or its disk all but
    full (no beat can record the world)."""
    try:
        st = os.statvfs(data)
    except OSError:
        return ""
    if st.f_flag & os.ST_RDONLY or not os.access(data, os.W_OK):
        return f"the data dir {data} is read-only: no beat records the world — {WRITABLE_FIX}"
    free = st.f_bavail * st.f_frsize
    if free >= FULL_BELOW:
        return ""
    return (
        f"the data dir's disk is full ({free >> 10} KiB free): no beat records the world — "
        "`looop doctor` names who filled it"
    )


def gather_status(
    paths: Paths, env: Mapping[str, str], clock: Clock, all_workers: bool = True
) -> StatusView:
    return gather_status_at(os.fspath(paths.data), os.fspath(paths.config), env, clock, all_workers)


def gather_status_at(
    data: str, config: str, env: Mapping[str, str], clock: Clock, all_workers: bool = True,
    light: list[dict[str, Any]] | None = None,
) -> StatusView:  # fmt: skip
    """`looop status` as data, from the data dir and config file as strings. `all_workers=False`:
    finished workers only counted (`workers_finished`), not read; `light`: as _workers takes it."""
    holder = beat_holder_at(data)
    running = holder is not None and holder[0] == "pulse"
    warned: list[str] = []
    config_error, runner, knobs, interval, spend = _configured(data, config, env, clock, warned)
    records = beat_records(data)
    workers, finished = _workers(data, all_workers, light)
    backoff = _read_obj(_at(data, ".tick-backoff"))
    streak = fails if isinstance(fails := (backoff or {}).get("fails"), int) and fails > 0 else 0
    healing = _healing(data)
    health = _health(holder is not None, running, streak, bool(healing["restarting"]))
    windows, windows_error = _usage_windows(data, clock)
    return {
        "data_dir": data,
        "config": config,
        "config_error": config_error,
        "config_warnings": warned,
        "runner": runner,
        "web": web_running(data),
        "now": stamp(clock, clock.now()),
        "pulse": {
            "running": running,
            "pid": holder[1] if holder is not None and running else "",
            "interval_s": interval,
            "restarts": healing["restarts"],
            "last_cause": healing["last_cause"],
            "restarting": healing["restarting"],
            "revived": healing["revived"],
            "strays": _strays(data, env),
        },
        "pulse_alive": running,
        "paused": not running and paused_at(_at(data, "events.jsonl")),
        "health": health,
        "failing_streak": streak,
        "tick": {"pid": holder[1]} if holder is not None and not running else None,
        "last_beat": last_beat(records, clock, holder is not None),
        "next_beat": next_beat(records, clock, running),
        "retry": _retry(backoff, knobs, clock),
        "limited": _limited(data, clock),
        "windows": windows,
        "windows_error": windows_error,
        "last_tick": _last_tick(data, clock),
        "backoff": backoff,
        "last_failure": _read_obj(_at(data, ".last-failure.json")),
        "disk_full": disk_full(data),
        "clock_wakes": (store.read_text(_at(data, ".clock-wakes")) or "").strip(),
        "goals": _goals(data),
        "journal_tail": tail(_at(data, "journal.md"), 3),
        "workers": workers,
        "workers_finished": finished,
        "spend": spend,
        "savings": savings_view(data, clock),
        "asks": _asks(data),
        "schedules": _schedules(data),
    }


def _configured(
    data: str, config: str, env: Mapping[str, str], clock: Clock, warnings: list[str]
) -> tuple[str | None, str | None, Knobs | None, int | None, SpendStatus | SpendError | None]:
    """What the config says (its error, the runner, the knobs, the idle interval, today's
    spend); a misspelt key is added to `warnings`: almost always a setting the user thinks
    is on, so status says so."""
    try:
        cfg = load_config(config, default_config_obj())
        r = cfg.runner()
        knobs = resolve_knobs(cfg, env, warnings.append)
        interval = knobs.interval_for("idle")
        try:
            spend: SpendStatus | SpendError = spend_status(data, clock, knobs, r)
        except CorruptState as e:
            spend = {"error": str(e)}
    except LooopError as e:
        return str(e), None, None, None, None
    return None, r.name if r else None, knobs, interval, spend


def _usage_windows(data: str, clock: Clock) -> tuple[list[dict[str, Any]], str | None]:
    """The accounts at their usage limit and the starts held for them (home/usagewindows)."""
    if not any(os.path.lexists(_at(data, n)) for n in (where.USAGE_WINDOWS, where.USAGE_HELD)):
        return [], None  # a home that never met a limit

    return view(data, clock)


def _health(held: bool, running: bool, streak: int, restarting: bool) -> str:
    if not held:
        return "restarting" if restarting else "stopped"
    if not running:
        return "tick"  # a foreground `looop tick` holds the beat, no pulse
    return "failing" if streak else "ok"


def web_running(data: str) -> str | None:
    """The URL (without its token) of the `looop web` serving this data dir, None when none
    does."""
    rec = web_record(data)
    return str(rec["url"]) + "/" if rec is not None and isinstance(rec.get("url"), str) else None


def web_record(data: str) -> dict[str, Any] | None:
    """The live `looop web`'s runtime record (web/auth.runtime_path: pid, url, port), None
    when its pid is no `looop web` (gone, or reused)."""
    try:
        rec = store.read_json_object(where.join(_at(data, where.LOCKS), "web.json"))
    except (CorruptState, OSError):
        return None
    pid = rec.get("pid") if rec else None
    if not isinstance(pid, int) or isinstance(pid, bool) or not is_web_pid(pid):
        return None
    return rec


def is_web_pid(pid: int) -> bool:
    """pid is alive and still a `looop web` (a reused pid is not)."""
    try:
        return is_web(store.read_regular(f"/proc/{pid}/cmdline"))
    except OSError:
        return False


def config_trouble(st: StatusView) -> bool:
    """Whether status exits 1: the config cannot be used, or holds a key looop does not read."""
    return bool(st.get("config_error") or st.get("config_warnings"))


def _strays(data: str, env: Mapping[str, str]) -> list[str]:
    """Pulses of this home still running on a data dir removed or replaced under them (the
    runtime dir's registry: no lock in the data dir shows them)."""
    try:
        return [str(r["pid"]) for r in homes.strays(runtime_base(env), data)]
    except (LooopError, OSError):
        return []
