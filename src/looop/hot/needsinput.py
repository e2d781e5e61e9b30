"""A worker that waits for a human on its own screen: at its CLI's permission/approval prompt,
or idle at its input box with its turn done. Neither busy nor stuck: health `needs-input`.
Also a worker at its provider's usage limit (`limited until HH:MM`, core/limits).

Cheap by construction: a worker's screen is read (one `screenshot` request to its
supervisor, bounded in time) only when its output.log changed since the last look; the
verdict is kept in `.needs-input.json` keyed by the log's size and mtime, so an idle fleet
costs one stat per worker per beat and never wakes a supervisor's screen emulator; a log that
grew by a repeat of the bytes just before it (the same screen redrawn) keeps its verdict for
one small read. The
patterns run on the plain screen text only (never the raw bytes); a runner's own patterns
(`runners.<name>.needs_input`, core/screenrules) judge the workers that runner started (its
name is in the worker's record, workers/resume) and run through `regex` with a time bound.

Light at import (no pathlib, typing or re at module level): `looop ls` reaches it through
workers/fleet on its fast path."""

from __future__ import annotations

import os

from looop.hot import logfiles, store, where
from looop.hot.errors import CorruptState
from looop.hot.wire import read_meta

TYPE_CHECKING = False  # not `from typing`: `looop ls` imports this on its fast path
if TYPE_CHECKING:
    from re import Pattern
    from typing import Any

    from looop.core.context import Ctx
    from looop.hot.clock import Clock
    from looop.hot.config import Config

HEALTH = "needs-input"
CACHE = ".needs-input.json"  # in <data>: per worker, the log it judged and the verdict
TOLD = ".needs-input-told.json"  # in <data>: workers the human was told about (latch)
CACHE_VERSION = 1
SHOT_TIMEOUT_S = 1.0  # one screenshot request; a supervisor that does not answer: no verdict
MAX_TEXT = 64 * 1024  # a screen is rows x cols; a huge one is cut to its end
CUSTOM_TIMEOUT_S = 0.05  # per custom pattern and screen
LIMIT_TAIL = 4096  # a usage-limit message is the last thing a stopped agent printed
REPEAT_MAX = 16 * 1024  # a redraw this long or shorter is compared with the one before it
CLIS = ("claude", "codex", "opencode", "pi")

# Per CLI (learnt from the real pinned TUIs' screens, tests/unit/workers/screens/; opencode's
# approval prompt appears with `"permission": {"bash": "ask"}` in its config):
# `busy` wins over everything (a working CLI still draws its input box), then `needs`,
# each (kind, pattern). Multiline; matched against the plain screen text.
_RULES: dict[str, tuple[tuple[str, ...], tuple[tuple[str, str], ...]]] = {
    "claude": (
        (r"esc to interrupt",),
        (
            ("approval", r"^ *Do you want to [^\n]{1,200}\?\n *❯ ?1\. Yes"),
            ("approval", r"^ *Esc to cancel · "),
            ("idle", r"^─{10,}\n❯[^\n]*\n─{10,}$"),
        ),
    ),
    "codex": (
        (r"esc to interrupt",),
        (
            ("approval", r"Would you like to (?:run|make|grant|allow)[^\n]{0,200}\?"),
            ("approval", r"^ *(?:enter/esc confirm|Press enter to confirm or esc to cancel)"),
            # once a turn ended (`← for agents · ? for shortcuts`); its start screen shows
            # the hint alone while the chooser or the brief is still coming: not idle
            ("idle", r" · \? for shortcuts *$"),
        ),
    ),
    "opencode": (
        (r"esc (?:to )?interrupt",),
        (
            ("approval", r"△ Permission required"),
            ("approval", r"Allow once +Allow always +Reject"),
            # once a turn ended its status line shows what it cost (busy adds `esc
            # interrupt`; while it starts, with the brief not yet sent, neither shows)
            ("idle", r" · \$[0-9.,]+ +ctrl\+p commands *$"),
        ),
    ),
    "pi": (
        (r"^ *[\u2800-\u28ff] Working\.\.\.", r"esc to interrupt"),
        (("idle", r"^─{10,}\n[^\n]*\n─{10,}\n"),),
    ),
}


class Rules:
    """Compiled patterns: the built-in ones per CLI and the config's per runner name."""

    __slots__ = ("builtin", "custom")

    def __init__(self, custom: dict[str, tuple[str, ...]] | None = None) -> None:
        import re  # lazy: only a screen that is read compiles anything

        self.builtin: dict[str, tuple[list[Pattern[str]], list[tuple[str, Pattern[str]]]]] = {
            cli: (
                [re.compile(p, re.MULTILINE) for p in busy],
                [(kind, re.compile(p, re.MULTILINE)) for kind, p in needs],
            )
            for cli, (busy, needs) in _RULES.items()
        }
        self.custom: dict[str, list[Any]] = {}
        if custom:
            import regex  # lazy: only runners with their own patterns

            self.custom = {
                name: [regex.compile(p, regex.MULTILINE) for p in pats]
                for name, pats in custom.items()
                if pats
            }


def custom_patterns(runners: Any) -> dict[str, tuple[str, ...]]:
    """Runner name -> that runner's `needs_input` patterns, from Config.runners. They apply
    to the workers that runner started (their record, workers/resume, names it)."""
    return {
        name: tuple(pats) for name, r in runners.items() if (pats := getattr(r, "needs_input", ()))
    }


def runner_of(data: str, wid: str) -> str | None:
    """The runner that started the worker, from its record `resume/<id>.json` (written at
    every start, workers/resume); None without one."""
    try:
        rec = store.read_json_object(where.join(where.join(data, "resume"), f"{wid}.json"))
    except (CorruptState, OSError):
        return None
    name = rec.get("runner") if isinstance(rec, dict) and rec.get("id") == wid else None
    return name if isinstance(name, str) else None


def programs_in(cmd: list[str]) -> set[str]:
    """Every word's base name in a session's argv (`bash -c "claude …"` names claude)."""
    out: set[str] = set()
    for arg in cmd:
        for w in arg.replace('"', " ").replace("'", " ").replace(";", " ").split():
            out.add(os.path.basename(w))
    return out


def _line(text: str, at: int) -> str:
    start = text.rfind("\n", 0, at) + 1
    end = text.find("\n", at)
    return " ".join(text[start : end if end >= 0 else len(text)].split())[:200]


def judge(text: str, progs: set[str], rules: Rules, runner: str | None = None) -> str | None:
    """`kind: the line` when this plain screen waits for a human, else None. The CLIs named
    in `progs` are judged by their own patterns (every CLI's when none is named), then the
    patterns of `runner` (the worker's own runner) when it has any."""
    text = text[-MAX_TEXT:]
    clis = [c for c in CLIS if c in progs] or list(CLIS)
    for cli in clis:
        busy, needs = rules.builtin[cli]
        if any(p.search(text) for p in busy):
            return None
        for kind, p in needs:
            m = p.search(text)
            if m:
                return f"{kind}: {_line(text, m.start())}"
    for p in rules.custom.get(runner, ()) if runner is not None else ():
        try:
            m = p.search(text, timeout=CUSTOM_TIMEOUT_S)
        except TimeoutError:
            continue  # a pattern that backtracks without end: no verdict from it
        if m:
            return f"custom: {_line(text, m.start())}"
    return None


def _log_key(sdir: str) -> list[int] | None:
    """[logical size, mtime]: offsets that a rotation does not move (hot/logfiles.py)."""
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


def _screen(data: str, sid: str) -> str | None:
    """The live plain screen from the worker's supervisor, or None when it cannot answer."""
    from pathlib import Path  # lazy: only a changed screen is read

    from looop.hot.wire import SessionError
    from looop.sessions.client import request

    try:
        shot = request(
            Path(data), sid, "screenshot", timeout_s=SHOT_TIMEOUT_S, format="plain", trim=True
        )
    except (SessionError, OSError):
        return None
    text = shot.get("text") if isinstance(shot, dict) else None
    return text if isinstance(text, str) else None


def _cmd(sdir: str) -> Any:

    try:
        meta = read_meta(sdir)
    except (CorruptState, OSError):
        return None
    return meta.get("cmd") if meta else None


def limited_until(sdir: str, clock: Clock) -> str | None:
    """HH:MM when the worker's output ends on its CLI's usage-limit message, else None."""
    try:
        raw = logfiles.tail(sdir, LIMIT_TAIL)
    except OSError:
        return None
    if b"limit" not in raw.lower():
        return None  # the usual case: no parser loaded at all
    from looop.core.limits import find_limit  # lazy: a screen naming a limit
    from looop.hot.textsafe import screen_text

    lim = find_limit(screen_text(raw), clock.now(), clock.zone())
    if lim is None:
        return None
    tm = clock.local_tm(lim.said_at)
    return f"{tm.tm_hour:02d}:{tm.tm_min:02d}"


def refine(
    data: str,
    rows: list[dict[str, Any]],
    sessions: dict[str, dict[str, Any]],
    clock: Clock,
    custom: dict[str, tuple[str, ...]] | None = None,
    look: bool = True,
) -> None:
    """Turn a live busy/stuck row's health into `limited until HH:MM` or `needs-input` (with
    `needs_input`: what its screen says) in place. `sessions`: id -> the listing's fields
    (`dir`). Reads a screen only when its log changed since the verdict cached; `look`
    False (`looop ls`, which must stay light): never, the last beat's verdict stands."""
    cache = _read_cache(data)
    fresh: dict[str, Any] = {}
    rules: Rules | None = None
    for r in rows:
        if not r["alive"] or r["health"] not in ("busy", "stuck"):
            continue
        s = sessions.get(r["id"]) or {}
        sdir = s.get("dir") or where.join(where.join(data, "sessions"), r["id"])
        until = limited_until(sdir, clock)
        if until is not None:
            r["health"] = f"limited until {until}"
            continue
        key = _log_key(sdir)
        if key is None:
            continue
        was = cache.get(r["id"])
        if isinstance(was, dict) and (was.get("k") == key or not look):
            # an idle box seen once counts when the next look finds the log unchanged
            verdict = was.get("why") or (was.get("seen") if was.get("k") == key else None)
        elif not look:
            continue
        elif isinstance(was, dict) and _repeated(sdir, was, key):
            # the same redraw again: no screen read; an idle box still waits for a quiet look
            fresh[r["id"]] = {**was, "k": key}
            _mark(r, was.get("why"))
            continue
        else:
            text = _screen(data, r["id"])
            if text is None:
                continue
            if rules is None:
                rules = Rules(custom)
            verdict = _judge_screen(data, r["id"], sdir, text, rules)
            if isinstance(verdict, str) and verdict.startswith("idle"):
                # a CLI starting or between steps draws its input box for a moment: idle
                # counts only once a later look finds nothing printed since
                fresh[r["id"]] = {"k": key, "why": None, "seen": verdict}
                continue
        fresh[r["id"]] = {"k": key, "why": verdict}
        _mark(r, verdict)
    if look and fresh != cache:
        _keep_cache(data, fresh)


def _mark(r: dict[str, Any], verdict: Any) -> None:
    """A verdict that names what the screen asks makes the row needs-input."""
    if isinstance(verdict, str):
        r["health"] = HEALTH
        r["needs_input"] = verdict


def _judge_screen(data: str, wid: str, sdir: str, text: str, rules: Rules) -> str | None:
    """What the worker's screen says, read with the rules for the programs it runs."""
    cmd = _cmd(sdir)
    progs = programs_in([str(a) for a in cmd]) if isinstance(cmd, list) else set()
    runner = runner_of(data, wid) if rules.custom else None
    return judge(text, progs, rules, runner)


def _keep_cache(data: str, fresh: dict[str, Any]) -> None:
    try:
        # no fsync: after a crash a lost cache costs one screen read per worker
        body = store.dumps_state({"v": CACHE_VERSION, "w": fresh}) + "\n"
        store.atomic_write(where.join(data, CACHE), body, durable=False)
    except OSError:
        pass  # a cache that cannot be kept costs a screen read next time, nothing more


def to_tell(data: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows that entered needs-input since the human was last told (latched in TOLD until
    the worker leaves the state, so a redraw or the next beat never tells again)."""
    path = where.join(data, TOLD)
    try:
        told = store.read_json_object(path) or {}
    except CorruptState:
        told = {}
    now_in = {r["id"]: r for r in rows if r.get("health") == HEALTH}
    new = [r for wid, r in sorted(now_in.items()) if wid not in told]
    keep = {wid: v for wid, v in told.items() if wid in now_in}
    for r in new:
        keep[r["id"]] = r.get("needs_input") or ""
    if keep != told:
        try:
            if keep:
                store.write_json(path, keep)
            else:
                store.remove(path)
        except OSError:
            pass  # cannot latch: telling again beats staying silent
    return new


def tell(ctx: Ctx, cfg: Config | None) -> int:
    """After the beat sensed: notify once per worker that entered needs-input (what its
    sys-sessions snapshot says), never on a redraw or the next beat; how many were told."""
    snap = where.join(str(ctx.paths.snapshots), "sys-sessions.json")
    try:
        obj = store.read_json_object(snap) or {}
    except CorruptState:
        return 0
    sig, det = obj.get("signal"), obj.get("detail")
    workers = det.get("workers") if isinstance(det, dict) else None
    rows: list[dict[str, Any]] = []
    for e in sig if isinstance(sig, list) else []:
        if not isinstance(e, dict) or not isinstance(e.get("id"), str):
            continue
        d = workers.get(e["id"]) if isinstance(workers, dict) else None
        said = d.get("needs_input") if isinstance(d, dict) else None
        rows.append({"id": e["id"], "health": e.get("health"), "needs_input": said})
    new = to_tell(str(ctx.paths.data), rows)
    if not new:
        return 0
    from looop.human.notify import notify  # lazy: only a worker waiting on its screen

    for r in new:
        msg = f"worker {r['id']} needs input: {r['needs_input'] or 'its screen waits'}"
        ctx.events.emit("warn", "worker.needs_input", msg, id=r["id"])
        ctx.events.record("worker_needs_input", id=r["id"], said=r["needs_input"])
        notify(ctx, msg, r["id"], HEALTH, cfg)
    return len(new)
