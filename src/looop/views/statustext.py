"""`looop status` as text or JSON: what the click command (cli/reads.py) prints."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from looop.home import jsonio, store, where
from looop.home.boxfolder import pending_asks
from looop.home.terminal import paint
from looop.home.worldhash import world_hash_at
from looop.spend import usd
from looop.spend.savings import savings_line
from looop.spend.totals import SAID_DAY_USD, SAID_REPORT_USD
from looop.views.beatlog import relative, tail
from looop.views.status import file_stem

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from looop.views.shapes import Stamp, StatusView


def _rel(st: StatusView, stamp: Stamp | None) -> str:
    """`2026-06-21 10:00:00 (3m ago)` from a stamp and the status's own `now`."""
    if not stamp or stamp["ts"] is None or st["now"]["ts"] is None:
        return "—"

    return f"{stamp['at']} ({relative(stamp['ts'] - st['now']['ts'])})"


def _window_line(st: StatusView, win: dict[str, Any]) -> str:
    """An account in a usage window: until when, its held starts, the workers to continue."""
    now = st["now"]["ts"]
    when = relative(win["until"] - now) if now is not None else "—"
    if "-" in str(win.get("until_at")):  # over a day away: its date said
        when = f"{when} ({win['until_at']})"
    parts = [f"window:    {win['runner']} ({win['who']}) at its usage limit, resets {when}"]
    if not win.get("confirmed", True):
        parts.append(f"said by {win['seen_by']} alone: it holds only that worker")
    if win["held"]:
        parts.append("held: " + ", ".join(win["held"]))
    if win["stopped"]:
        parts.append("to continue: " + ", ".join(win["stopped"]))
    return " · ".join(parts) + "\n"


def _pulse_line(st: StatusView) -> str:
    pulse = st["pulse"]
    tick = st["tick"]
    stopped = "paused (workers keep running; `looop up` resumes)" if st["paused"] else "stopped"
    if tick:
        return f"{stopped} · a foreground `looop tick` holds the beat (pid {tick['pid']})"
    healed = ""
    if pulse.get("restarts"):
        n = pulse["restarts"]
        healed = f" · restarts={n}, last cause: {pulse.get('last_cause') or '?'}"
    if pulse.get("revived"):
        return f"restarting (its supervisor was lost; looop starts it again){healed}"
    if pulse.get("restarting"):
        return f"restarting (crashed; its supervisor starts it again){healed}"
    if not pulse["running"]:
        return stopped + healed
    line = f"running (pid {pulse['pid'] or '?'}){healed}"
    if st.get("failing_streak"):
        n = st["failing_streak"]
        line += f" — failing: {n} beat{'s' if n != 1 else ''} in a row"
    return line


def _beat_line(st: StatusView) -> str:
    b = st.get("last_beat")
    if not b:
        return "never"
    line = f"{_rel(st, b)} · {b['outcome']}"
    if b.get("detail"):
        line += f": {b['detail']}"
    return line


def _pulse_colour(st: StatusView) -> str:
    if st["pulse"].get("restarting") or st.get("failing_streak"):
        return "red"
    return "green" if st["pulse"]["running"] else "yellow"


def print_status(st: StatusView, as_json: bool, colour: bool = False) -> None:
    """`looop status`; colour: health, breakers, asks and config errors in colour."""
    w = sys.stdout.write

    if as_json:
        w(jsonio.dumps(add_v1_fields(st), indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        return
    _write_pulse(st, colour, w)
    _write_config(st, colour, w)
    _write_spend(st, colour, w)
    _write_work(st, colour, w)
    if st["journal_tail"]:
        w("\nJOURNAL (last 3)\n")
    for line in st["journal_tail"]:
        w(f"  {line}\n")
    w(f"\ndata dir:  {st['data_dir']}\n")
    w(f"times:     local, as of {st['now']['at']}\n")


def _red(text: str, colour: bool) -> str:
    return paint(text, "red", colour)


def _write_pulse(st: StatusView, colour: bool, w: Callable[[str], object]) -> None:
    """The PULSE block: the pulse, its beats, retries, limits and runner."""
    pulse = st["pulse"]
    w("PULSE\n")
    w(f"pulse:     {paint(_pulse_line(st), _pulse_colour(st), colour)}\n")
    if pulse.get("strays"):
        w(
            f"stray:     a pulse of a removed or replaced data dir still runs (pid "
            f"{', '.join(pulse['strays'])}) — `looop down` stops it and its workers\n"
        )
    w(f"last beat: {_beat_line(st)}\n")
    if st.get("disk_full"):
        w(f"disk:      {_red('✗', colour)} {st['disk_full']}\n")
    if st.get("clock_wakes"):
        w(f"wakes:     {_red('✗', colour)} {st['clock_wakes']}\n")
    if st.get("retry"):
        w(f"retry:     {_rel(st, st['retry'])} · backoff (editing PLAYBOOK or goals retries now)\n")
    lim = st.get("limited")
    if lim:
        w(
            f"limited:   {lim.get('runner') or 'runner'} until {_rel(st, lim)} · provider usage "
            "limit, no AI call (`looop schedule drop provider-limit` retries sooner)\n"
        )
    for win in st.get("windows") or []:
        w(_window_line(st, win))
    if st.get("windows_error"):
        w(f"windows:   {st['windows_error']}\n")
    nb = st.get("next_beat")
    if nb:
        w(f"next beat: {_rel(st, nb)}" + (f" · {nb['reason']}" if nb.get("reason") else "") + "\n")
    lt = st["last_tick"]
    w("decided:   " + (f"{_rel(st, lt)} (hash {lt['hash'][:12] or '—'})" if lt else "never") + "\n")
    lf = st.get("last_failure")
    if lf:
        w(f"failing:   {_red('✗', colour)} {lf.get('error', '?')} (fail #{lf.get('fails', '?')})\n")
    every = f" · every {pulse['interval_s']}s idle" if pulse["interval_s"] else ""
    w(f"runner:    {st['runner'] or '—'}{every}\n")


def _write_config(st: StatusView, colour: bool, w: Callable[[str], object]) -> None:
    """The config's errors, where it lives, its warnings, and the web link's note."""
    if st["config_error"]:
        w(f"config:    {_red('✗', colour)} {st['config_error']}\n")
    elif st.get("config") and not str(st["config"]).startswith(str(st.get("data_dir", "")) + "/"):
        w(f"config:    {st['config']} (outside the data dir)\n")
    for said in st.get("config_warnings") or ():
        w(f"config:    {_red('✗', colour)} {said}\n")
    if st.get("web"):
        w(f"web:       {st['web']} (the link with its token: `looop web --url`)\n")


def _write_spend(st: StatusView, colour: bool, w: Callable[[str], object]) -> None:
    """The SPEND block: today's spend against the budget, and any open breaker."""
    sp = st["spend"]
    if sp:
        w("\nSPEND\n")
    if sp and "error" in sp:
        w(f"spend:     {_red('✗', colour)} {sp['error']}\n")
    elif sp:
        cap = sp["max_daily_usd"]
        said = (
            f" — ${sp['said_today_usd']:.4f} of it self-reported by workers (counted up to "
            f"{usd(SAID_REPORT_USD)} a report, {usd(SAID_DAY_USD)} a worker a day)"
        )
        budget = f" of ${cap:.2f} budget" if cap else " (no budget)"
        w(f"spend:     ${sp['spent_today_usd']:.4f} today{budget}")
        w((said if sp.get("said_today_usd") else "") + "\n")
        for br in (sp["budget"], sp["unmetered"], sp["decides"]):
            if br["open"]:
                w(f"breaker:   {_red('⚡', colour)} {br['lift']}\n")
    if sp:
        w("saved:     " + savings_line(st["savings"]) + "\n")


def _write_work(st: StatusView, colour: bool, w: Callable[[str], object]) -> None:
    """The WORK block: goals, asks, schedules and the live workers."""
    w("\nWORK\n")
    names = f" ({', '.join(st['goals'])})" if st["goals"] else ""
    w(f"goals:     {len(st['goals'])}{names}\n")
    if st.get("asks"):
        n = paint(f"? {len(st['asks'])} pending", "yellow", colour)
        w(f"asks:      {n}: {', '.join(st['asks'])} (looop asks)\n")
    sc = st.get("schedules") or {}
    if sc.get("names"):
        line = f"schedules: {len(sc['names'])} ({', '.join(sc['names'])})"
        if sc.get("due"):
            line += f" · due: {', '.join(sc['due'])}"
        if sc.get("invalid"):
            line += f" · {_red('✗', colour)} invalid: {', '.join(sc['invalid'])}"
        w(line + "\n")
    live = [x for x in st["workers"] if x.get("alive")]
    done = st.get("workers_finished", len(st["workers"]) - len(live))
    w(f"workers:   {len(live)} live, {done} finished" + (" (`looop ls -a`)" if done else "") + "\n")
    for x in live:
        flag = f"  ⚑ {x['note']}" if x.get("note") and x.get("alive") else ""
        box = " · sandboxed" if x.get("sandboxed") else ""
        w(f"  - {x.get('id', '?')} [{x.get('label', x.get('error', '?'))}{box}]{flag}\n")


# -- `--json`'s fields from v1.0's `state --json` on top of status's own: the live world hash,
# every snapshot's reading, the pending asks and a longer journal tail. Only `--json` runs
# them; status's other readers (tui, web, the pulse) import views/status.py alone.

V1_JOURNAL_LINES = 20  # v1.0's `state --json` journal_tail length


def add_v1_fields(st: StatusView) -> StatusView:
    """The fields v1.0's `looop state --json` has, with v1.0's meaning, on top of ours: the
    live world hash, every snapshot's parsed reading, the pending ask records and the last 20
    journal lines. Only `--json` pays for these reads (plain status stays as light as it was)."""
    data = st["data_dir"]
    snaps: dict[str, Any] = {}
    d = where.join(data, where.SNAPSHOTS)
    try:
        names = sorted(n for n in os.listdir(d) if n.endswith(".json"))
    except OSError:
        names = []
    for name in names:  # one unreadable, not a file or not JSON (or NaN): left out
        try:
            snaps[file_stem(name)] = jsonio.safe_loads(store.read_text(where.join(d, name)) or "")
        except (OSError, ValueError):
            continue
    asks = pending_asks(data)
    return {
        **st,
        "world_hash": world_hash_at(data),
        "snapshots": snaps,
        "asks": asks,
        "ask_ids": [str(a.get("id")) for a in asks],
        "journal_tail": tail(where.join(data, where.JOURNAL), V1_JOURNAL_LINES),
    }
