"""Plain-text renderings shared by verbs (no click import: used on the fast path)."""

from __future__ import annotations

import sys

from looop.loop.status import status_json

TYPE_CHECKING = False  # not `from typing`: importing typing costs the hot path ~3 ms

if TYPE_CHECKING:
    from typing import Any


def print_status(st: dict[str, Any], as_json: bool) -> None:
    w = sys.stdout.write
    if as_json:
        w(status_json(st) + "\n")
        return
    pulse = st["pulse"]
    w(f"pulse:     {'running (pid ' + pulse['pid'] + ')' if pulse['running'] else 'stopped'}\n")
    lt = st["last_tick"]
    w(f"last tick: {lt['at'] + ' (hash ' + (lt['hash'][:12] or '—') + ')' if lt else 'never'}\n")
    w(
        f"runner:    {st['runner'] or '—'}"
        + (f" · every {pulse['interval_s']}s idle" if pulse["interval_s"] else "")
        + "\n"
    )
    if st["config_error"]:
        w(f"config:    ✗ {st['config_error']}\n")
    sp = st.get("spend")
    if sp and "error" not in sp:
        cap = sp.get("max_daily_usd")
        w(
            f"spend:     ${sp['spent_today_usd']:.4f} today"
            + (f" of ${cap:.2f} budget" if cap else " (no budget)")
            + "\n"
        )
        for name in ("budget", "unmetered", "decides"):
            br = sp.get(name) or {}
            if br.get("open"):
                w(f"breaker:   ⚡ {br.get('lift')}\n")
    elif sp:
        w(f"spend:     ✗ {sp['error']}\n")
    lf = st.get("last_failure")
    if lf:
        w(f"failing:   ✗ {lf.get('error', '?')} (fail #{lf.get('fails', '?')})\n")
    w(
        f"goals:     {len(st['goals'])}"
        + (f" ({', '.join(st['goals'])})" if st["goals"] else "")
        + "\n"
    )
    if st.get("asks"):
        w(f"asks:      ? {len(st['asks'])} pending: {', '.join(st['asks'])} (looop asks)\n")
    sc = st.get("schedules") or {}
    if sc.get("names"):
        line = f"schedules: {len(sc['names'])} ({', '.join(sc['names'])})"
        if sc.get("due"):
            line += f" · due: {', '.join(sc['due'])}"
        if sc.get("invalid"):
            line += f" · ✗ invalid: {', '.join(sc['invalid'])}"
        w(line + "\n")
    live = [x for x in st["workers"] if x.get("alive")]
    w(f"workers:   {len(live)} live, {len(st['workers']) - len(live)} finished\n")
    for x in st["workers"]:
        flag = f"  ⚑ {x['note']}" if x.get("note") and x.get("alive") else ""
        w(f"  - {x.get('id', '?')} [{x.get('label', x.get('error', '?'))}]{flag}\n")
    for line in st["journal_tail"]:
        w(f"  {line}\n")
    w(f"data dir:  {st['data_dir']}\n")
