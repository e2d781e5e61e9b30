"""What a pod worker's screen waits on (its CLI's approval prompt, its idle input box), judged
once per beat — never on an `ls`, `watch` or web read, each of which would cost a pod-log API
call per pod. The beat reads each live pod worker's last log lines once, as `looop shot`
does, keeps its tail in `<data>/hosts/podlook/<id>/output.log` (rewritten only when it
changed), and hands it to views/needsinput.refine — the look a worker at home gets, with its
cache and its idle floor (an idle box counts once a later beat finds the log unchanged) —
judged by the CLIs' own patterns (workers/needsinput). Every listing then reads the kept
verdicts with no API call."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from looop.home import store, where
from looop.home.clock import Clock
from looop.home.errors import LooopError
from looop.home.sessionfiles import remove_tree
from looop.sessions.client import replayed
from looop.sessions.state import SessionError
from looop.views.needsinput import refine
from looop.workers.needsinput import Rules, judge

DIR = "podlook"  # under <data>/hosts
LOG = "output.log"
TAIL = 64 * 1024  # what is kept of a log: its key for the cache, and a usage limit's words


def _root(data: Path) -> Path:
    return data / where.HOSTS / DIR


def _dirs(data: Path, rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        str(r["id"]): {"dir": str(_root(data) / str(r["id"])), "started_at": r.get("started_at")}
        for r in rows
    }


def kept(data: Path, rows: list[dict[str, Any]], clock: Clock) -> None:
    """The last beat's verdicts on these pod workers' rows, in place: no API call."""
    if rows and _root(data).is_dir():
        refine(str(_root(data)), rows, _dirs(data, rows), clock)


class PodLooker:
    """views/needsinput's Looker over the logs this beat read: the screen each draws at its
    Job's size, judged by every CLI's patterns (a pod's argv is not kept at home)."""

    __slots__ = ("logs", "rules", "sizes")

    def __init__(self, logs: dict[str, bytes], sizes: Mapping[str, Any]) -> None:
        self.logs, self.sizes = logs, sizes
        self.rules: Rules | None = None

    def screen(self, data: str, wid: str) -> str | None:
        raw = self.logs.get(wid)
        try:
            cols, rows = self.sizes[wid](wid)
        except (LooopError, SessionError, KeyError):
            return None  # its Job out of reach now: no verdict this beat
        shot = replayed(raw, cols, rows, "plain", True) if raw is not None else {}
        text = shot.get("text")
        return text if isinstance(text, str) else None

    def judge(
        self, data: str, wid: str, sdir: str, text: str, custom: dict[str, tuple[str, ...]] | None
    ) -> str | None:
        if self.rules is None:
            self.rules = Rules()
        return judge(text, set(), self.rules)


def look(data: Path, rows: list[dict[str, Any]], backends: Mapping[str, Any], clock: Clock) -> None:
    """The beat's look at the live pod workers in `rows` (`backends`: host name -> its
    HostedKube): each log read once; a row whose screen waits on a human turns needs-input."""
    root = _root(data)
    live = [r for r in rows if r["alive"] and r["health"] in ("busy", "stuck")]
    logs: dict[str, bytes] = {}
    sizes: dict[str, Any] = {}
    for r in live:
        wid, b = str(r["id"]), backends.get(str(r.get("host")))
        if b is None:
            continue
        try:
            raw = b.screen_bytes(wid)
        except (LooopError, SessionError):
            continue  # out of reach this beat: the last verdict stands
        if _keep(root / wid / LOG, raw[-TAIL:]):
            logs[wid], sizes[wid] = raw, b._size
    _prune(root, {str(r["id"]) for r in live})
    if live:
        refine(str(root), live, _dirs(data, live), clock, None, PodLooker(logs, sizes))


def _keep(path: Path, tail: bytes) -> bool:
    """The log's tail where refine keys on it: rewritten only when it changed (an unchanged
    log keeps its mtime, so its verdict stands without a screen drawn)."""
    try:
        if path.exists() and path.read_bytes() == tail:
            return True
        path.parent.mkdir(parents=True, exist_ok=True)
        store.atomic_write(str(path), tail, durable=False)
    except OSError:
        return False
    return True


def _prune(root: Path, live: set[str]) -> None:
    """A pod worker over (or no longer busy) leaves no tail behind."""
    if not root.is_dir():
        return
    for d in root.iterdir():
        if d.is_dir() and d.name not in live:
            remove_tree(str(d))
