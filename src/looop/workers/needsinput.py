"""Needs-input, the beat's side: reading a worker's live screen and judging it, and telling
the human once per entry that joined the needs-you queue (human/notify). views/needsinput
keeps the verdicts (and `ls` reads them there without a screen read); the beat hands it a
Looker to read the screens whose log changed since.

Each CLI's own waiting screens (learnt from the real pinned TUIs) are matched on the plain
screen text only (never the raw bytes); a runner's own patterns (`runners.<name>.needs_input`,
home/screenrules) judge the workers that runner started (its name is in the worker's record,
workers/resume) and run through `regex` with a time bound."""

from __future__ import annotations

import os
import re
from operator import attrgetter
from re import Pattern
from typing import Any

from looop.core.context import Ctx
from looop.core.readings import Reading, read_reading
from looop.home import screenrules, store, where
from looop.home.config import Config
from looop.home.errors import CorruptState
from looop.home.sessionfiles import SessionError, read_meta
from looop.human.notify import tell_needs
from looop.runners import RUNNERS
from looop.runners.runnerprofile import RunnerProfile
from looop.sessions.client import request
from looop.sessions.state import Listing, Session
from looop.spend.usagewindows import held_rows
from looop.views import workerrows as fleet
from looop.views.needsinput import BUSY

SHOT_TIMEOUT_S = 1.0  # one screenshot request; a supervisor that does not answer: no verdict
MAX_TEXT = 64 * 1024  # a screen is rows x cols; a huge one is cut to its end
CUSTOM_TIMEOUT_S = 0.05  # per custom pattern and screen


# Per CLI, its profile's screens (runners/__init__.py; learnt from the real pinned TUIs' screens,
# tests/unit/workers/screens/): `busy` wins over everything (a working CLI still draws its
# input box), then `needs`, each (kind, pattern). Multiline; matched against the plain screen
# text.
class Rules:
    """Compiled patterns: the built-in ones per CLI and the config's per runner name."""

    __slots__ = ("builtin", "custom")

    def __init__(
        self,
        custom: dict[str, tuple[str, ...]] | None = None,
        runners: tuple[RunnerProfile, ...] = RUNNERS,
    ) -> None:
        self.builtin: dict[str, tuple[list[Pattern[str]], list[tuple[str, Pattern[str]]]]] = {
            r.name: (
                [re.compile(p, re.MULTILINE) for p in r.busy],
                [(kind, re.compile(p, re.MULTILINE)) for kind, p in r.needs],
            )
            for r in runners
        }
        self.custom: dict[str, list[Any]] = {
            name: [screenrules.compiled(p) for p in pats]
            for name, pats in (custom or {}).items()
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
    """Every word's base name in a session's argv (`bash -c "prog …"` names prog)."""
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
    return _judged(text[-MAX_TEXT:], progs, rules, runner) or None


def _judged(text: str, progs: set[str], rules: Rules, runner: str | None) -> str | None:
    """judge's verdict, BUSY where the CLI's own busy line shows."""
    clis = [c for c in rules.builtin if c in progs] or list(rules.builtin)
    for cli in clis:
        busy, needs = rules.builtin[cli]
        if any(p.search(text) for p in busy):
            return BUSY
        for kind, p in needs:
            if m := p.search(text):
                return f"{kind}: {_line(text, m.start())}"
    for p in rules.custom.get(runner, ()) if runner is not None else ():
        try:
            m = p.search(text, timeout=CUSTOM_TIMEOUT_S)
        except TimeoutError:
            continue  # a pattern that backtracks without end: no verdict from it
        if m:
            return f"custom: {_line(text, m.start())}"
    return None


def _screen(data: str, sid: str) -> str | None:
    """The live plain screen from the worker's supervisor, or None when it cannot answer."""
    try:
        shot = request(data, sid, "screenshot", timeout_s=SHOT_TIMEOUT_S, format="plain", trim=True)
    except (SessionError, OSError):
        return None
    text = shot.get("text") if isinstance(shot, dict) else None
    return text if isinstance(text, str) else None


class Looker:
    """What views/needsinput.refine asks when a worker's log changed: its live screen, and what
    that screen says (the rules compiled once, on the first screen judged)."""

    __slots__ = ("rules",)

    def __init__(self) -> None:
        self.rules: Rules | None = None

    def screen(self, data: str, wid: str) -> str | None:
        return _screen(data, wid)

    def judge(
        self, data: str, wid: str, sdir: str, text: str, custom: dict[str, tuple[str, ...]] | None
    ) -> str | None:
        """What the worker's screen says, read with the rules for the programs it runs; BUSY
        where it shows its CLI at work."""
        if self.rules is None:
            self.rules = Rules(custom)
        try:
            meta = read_meta(sdir)
        except (CorruptState, OSError):
            meta = None
        cmd = meta.get("cmd") if meta else None
        progs = programs_in([str(a) for a in cmd]) if isinstance(cmd, list) else set()
        runner = runner_of(data, wid) if self.rules.custom else None
        return _judged(text[-MAX_TEXT:], progs, self.rules, runner)


def tell(ctx: Ctx, cfg: Config | None, sessions: Reading | None = None) -> int:
    """After the beat sensed: notify once per entry that joined the needs-you queue
    (human/notify: needs-input, a usage limit, a bound's pause, a held start; asks and
    spend budgets are told where they happen), from what its sys-sessions reading says (the
    beat's, else its snapshot's) and the held starts; how many were told."""
    if sessions is None:
        sessions = read_reading(str(ctx.paths.snapshots), "sys-sessions")
    if not isinstance(sessions.value, dict):
        return 0  # missing, unreadable or not the probe's shape: nothing to say
    sig, workers = sessions.signal, sessions.items_of("workers")
    rows: list[dict[str, Any]] = []
    # a finished one ("dead") needs no one: passed at once, a fleet keeps hundreds
    entries = sig if isinstance(sig, list) else []
    for e in [e for e in entries if isinstance(e, dict) and e.get("health") != "dead"]:
        if not isinstance(e.get("id"), str):
            continue
        d = workers.get(e["id"])
        said = d.get("needs_input") if isinstance(d, dict) else None
        host = e.get("host") if isinstance(e.get("host"), str) else None
        rows.append({"id": e["id"], "health": e.get("health"), "needs_input": said, "host": host})
    rows += held_rows(str(ctx.paths.data), ctx.clock)
    return tell_needs(ctx, cfg, rows)


# -- worker health for the decider (busy | waiting-ask | needs-input | limited until HH:MM |
# stuck | dead): the rows are built in views/workerrows.py (light, for `looop ls`); these are
# the Session- and Ctx-shaped doors the pulse, its probes and the TUI use.


_LIGHT = ("id", "state", "alive", "exit_code", "label", "note", "started_at", "last_change",
          "contain", "prompt")  # fmt: skip
_light_of = attrgetter(*_LIGHT)  # one call a session: a beat reads every kept one


def session_fields(s: Session) -> dict[str, Any]:
    """A Session as home/sessionfiles.load_light reads one (what fleet.worker_rows takes)."""
    return dict(zip(_LIGHT, _light_of(s), strict=True), dir=str(s.dir))


def fleet_view(
    ctx: Ctx,
    sessions: list[Session],
    stuck_secs: int,
    trees: dict[str, dict[str, Any]] | None = None,
    custom: dict[str, tuple[str, ...]] | None = None,
    ends: fleet.Ends | None = None,
) -> list[dict[str, Any]]:
    """One row per worker (pulse excluded), sorted by id: what sys-sessions and `worker list` show
    (`trees`: fleet.tree_records, when the caller already read them; `custom`: the runners'
    needs-input patterns, workers/needsinput; `ends`: the pulse's memory of finished workers'
    own files, views/workerrows).

    Times are absolute stamps, never ages, so an unchanged fleet renders byte-identically."""
    kept: tuple[object, list[dict[str, Any]]] | None = None
    if ends is not None and isinstance(sessions, Listing):  # its block: the same while it is
        b, block = ends.block, sessions.block
        fields = b[1] if b is not None and b[0] is block else [session_fields(s) for s in block]
        kept, sessions = (block, fields), sessions.fresh
    rows = [session_fields(s) for s in sessions]
    data = str(ctx.paths.data)
    return fleet.worker_rows(data, rows, ctx.clock, stuck_secs, trees, custom, Looker(), ends, kept)
