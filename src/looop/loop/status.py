"""A pure read of the loop's state for `looop status`: never starts or changes anything."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from looop.core import store
from looop.core.config import load_config, resolve_knobs
from looop.core.errors import CorruptState, LooopError

TYPE_CHECKING = False  # not `from typing`: importing typing costs the hot path ~3 ms

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from looop.core.config import Knobs, Runner
    from looop.core.paths import Paths

# No Ctx here: `looop status` runs on the click-free fast path and must import little.


def _last_tick(paths: Paths) -> dict[str, Any] | None:
    p = paths.last_tick_hash
    try:
        st = p.stat()
    except OSError:
        return None
    at = datetime.fromtimestamp(st.st_mtime, tz=UTC).isoformat(timespec="seconds")
    return {"at": at, "hash": (store.read_text(p) or "").strip()}


def _read_obj(path: Any) -> dict[str, Any] | None:
    try:
        return store.read_json_object(path)
    except CorruptState as e:
        return {"error": str(e)}


def _spend(paths: Paths, knobs: Knobs, runner: Runner | None) -> dict[str, Any]:
    from looop.core.clock import SystemClock
    from looop.decide.cost import spend_status

    try:
        return spend_status(paths, SystemClock(), knobs, runner)
    except CorruptState as e:
        return {"error": str(e)}


def _workers(paths: Paths) -> list[dict[str, Any]]:
    from looop.sessions.state import list_sessions

    try:
        sessions = list_sessions(paths.data)
    except OSError as e:
        return [{"error": f"cannot list sessions: {e.strerror}"}]
    return [
        {
            "id": s.id,
            "state": s.state,
            "label": s.label,
            "alive": s.alive,
            "exit_code": s.exit_code,
            "flagged": bool(s.note),
            "note": s.note,
        }
        for s in sessions
        if s.id != "pulse"
    ]


def _from_snapshot(paths: Paths, name: str) -> dict[str, Any] | None:
    """A system probe's last reading: what the pulse saw on its last beat, at no cost now."""
    return _read_obj(paths.snapshots / f"{name}.json")


def _schedules(paths: Paths) -> dict[str, Any]:
    snap = _from_snapshot(paths, "sys-schedules") or {}
    raw = snap.get("signal")
    signal: dict[str, Any] = raw if isinstance(raw, dict) else {}
    names = sorted(signal)
    due = [n for n in names if signal[n] == "due"]
    invalid = [n for n in names if signal[n] == "invalid"]
    return {"names": names, "due": due, "invalid": invalid}


def _asks(paths: Paths) -> list[str]:
    snap = _from_snapshot(paths, "sys-asks") or {}
    sig = snap.get("signal")
    return [str(x) for x in sig] if isinstance(sig, list) else []


def pulse_pid(paths: Paths) -> str:
    """The running pulse's pid as written in .lock/pid ('' when none)."""
    return (store.read_text(paths.pid_file) or "").strip()


def gather_status(paths: Paths, env: Mapping[str, str]) -> dict[str, Any]:
    p = paths
    running = store.flock_held(p.lock_file)
    pid = pulse_pid(p) if running else ""
    config_error = None
    runner = None
    try:
        cfg = load_config(p.config)
        r = cfg.runner()
        runner = r.name if r else None
        knobs = resolve_knobs(cfg, env)
        interval = knobs.interval_for("idle")
        spend = _spend(paths, knobs, r)
    except LooopError as e:
        config_error, interval, spend = str(e), None, None
    journal_tail = store.tail_lines(p.journal, 3)
    goals = sorted(g.stem for g in p.goals.glob("*.md")) if p.goals.is_dir() else []
    return {
        "data_dir": str(p.data),
        "config": str(p.config),
        "config_error": config_error,
        "runner": runner,
        "pulse": {"running": running, "pid": pid, "interval_s": interval},
        "last_tick": _last_tick(p),
        "backoff": _read_obj(p.backoff),
        "last_failure": _read_obj(p.last_failure),
        "goals": goals,
        "journal_tail": journal_tail,
        "workers": _workers(p),
        "spend": spend,
        "asks": _asks(p),
        "schedules": _schedules(p),
    }


def status_json(st: dict[str, Any]) -> str:
    return json.dumps(st, indent=2, sort_keys=True, ensure_ascii=False)
