"""The tick prompt: everything the decider sees, stable prefix first, volatile sections last."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from looop.core.context import Ctx
from looop.core.readings import Snapshot
from looop.decide.defuse import BREAKS, escape_body
from looop.decide.instructions import instructions
from looop.decide.order import Shown, by_change, digest
from looop.decide.promptinputs import PromptInputs, gather_inputs
from looop.decide.promptreadings import ages_lines, reading_items
from looop.home import store
from looop.home.clock import Clock, offset_stamp
from looop.home.config import Knobs

# Per-item caps, in characters.
GOAL_CAP = 8000
PLAYBOOK_CAP = 16000
SNAPSHOT_CAP = 16000
JOURNAL_LINE_CAP = 500
FAILURE_CAP = 2000
SHELL_CAP = 2000
CHANGE_LINE_CAP = 240
CHANGE_LINES = 200

CONSTITUTION_HEADER = "=== CONSTITUTION (immutable — overrides PLAYBOOK) ==="
NOW_HEADER = "=== NOW ==="

# Section titles as v1.0 words them: the title itself carries the instruction
ASKS_TITLE = "PENDING ASKS (waiting on the human — not yours to answer)"
FAILURE_TITLE = "LAST FAILURE (your last decision failed — do not repeat it)"


def marker(n: int, what: str = "more chars") -> str:
    return f"[… truncated by looop: {n} {what} …]"


def _one_line(s: str) -> str:
    return BREAKS.sub(" ", s).strip()


def _clip_line(s: str, cap: int) -> str:
    s = _one_line(s)
    return s if len(s) <= cap else s[:cap] + " " + marker(len(s) - cap)


def _keep_head(s: str, cap: int) -> str:
    return s if len(s) <= cap else s[:cap].rstrip("\n") + "\n" + marker(len(s) - cap)


def _keep_tail(s: str, cap: int) -> str:
    if len(s) <= cap:
        return s
    return marker(len(s) - cap, "earlier chars") + "\n" + s[len(s) - cap :]


def _text(v: Any) -> str:
    if v is None:
        return ""
    return v if isinstance(v, str) else str(v)


@dataclass
class PromptExtras:
    actions: str  # the reference of every action the decider may take (act/actiontable)
    changes: list[str] = field(default_factory=list)  # WHAT CHANGED lines, already formatted
    last_failure: dict[str, Any] | None = None  # {"run_id","code","error","fails","ts"}
    last_shell: dict[str, Any] | None = (
        None  # {"cmd","exit_code","timed_out","secs","stdout","stderr"}
    )
    flapping: list[str] = field(default_factory=list)  # snapshot names damped now
    flap_notes: list[str] = field(default_factory=list)  # started/settled, told once
    workers: str | None = None  # pre-rendered WORKERS body
    asks: str | None = None  # pre-rendered PENDING ASKS body
    provider_limit: str | None = None  # the runner waited out a usage limit: told once


@dataclass
class BuiltPrompt:
    text: str
    truncated: list[str]  # human notes of what was cut
    shown: Shown = ()  # each reading's and age's key and digest, in the order shown (order.py)


@dataclass
class _Body:
    """One inlined body. `keep` chars of `raw` survive its cap; the cut is marked visibly."""

    label: str
    raw: str
    keep: int = -1

    def __post_init__(self) -> None:
        if self.keep < 0:
            self.keep = len(self.raw)

    def render(self) -> str:
        cut = len(self.raw) - self.keep
        if cut <= 0:
            text = escape_body(self.raw)
        else:
            head = escape_body(self.raw[: self.keep]).rstrip("\n")
            text = (head + "\n" if head else "") + marker(cut)
        return text.rstrip("\n") + "\n"


@dataclass
class _Item:
    """One goal or one sensor reading: over the total cap it is left out whole, never cut."""

    kind: str  # "goal" | "sensor reading", as its marker counts it
    parts: list[str | _Body]
    kept: bool = True

    def render(self) -> str:
        return "".join(p if isinstance(p, str) else p.render() for p in self.parts)


@dataclass
class _Gap:
    """Where a section says how many of its items the total cap left out (empty if none)."""

    kind: str
    left_out: int = 0
    limit: int = 0

    def render(self) -> str:
        if not self.left_out:
            return ""
        n = self.left_out
        what = f"{self.kind}{'' if n == 1 else 's'} left out to keep the prompt under "
        return marker(n, f"{what}{self.limit} bytes — {_TIDY[self.kind]}") + "\n"


_TIDY = {"goal": "archive or merge goals", "sensor reading": "merge or quiet sensors"}

Part = str | _Body | _Item | _Gap


def _render(parts: list[Part]) -> str:
    return "".join(p if isinstance(p, str) else p.render() for p in parts if _shown(p))


def _shown(p: Part) -> bool:
    return not isinstance(p, _Item) or p.kept


def _size(text: str) -> int:
    return len(store.encode(text))


# ---------------------------------------------------------------- sections


def _capped_body(label: str, raw: str, cap: int, notes: dict[str, str]) -> _Body:
    body = _Body(label, raw)
    if len(raw) > cap:
        body.keep = cap
        notes[label] = f"{label} cut at {cap} chars"
    return body


def _most_neglected(activity: Mapping[str, Any], goal_ids: list[str]) -> tuple[str, float]:
    """Smallest last-acted time wins (never acted = 0); ties go to the first in sorted order."""
    best, best_ts = goal_ids[0], float("inf")
    for gid in goal_ids:
        v = activity.get(gid)
        ts = float(v) if isinstance(v, int | float) and not isinstance(v, bool) else 0.0
        if ts != ts:  # NaN
            ts = 0.0
        if ts < best_ts:
            best, best_ts = gid, ts
    return best, best_ts


def _fairness(inputs: PromptInputs, goal_ids: list[str]) -> str:
    gid, ts = _most_neglected(inputs.goal_activity, goal_ids)
    name = _one_line(gid)
    if ts <= 0:
        when = "never acted on"
    else:
        try:
            when = "last acted on " + offset_stamp(inputs.clock.local(ts))
        except (OverflowError, OSError, ValueError):
            when = "acted on long ago"
    return (
        f"Most neglected goal: `{name}` ({when}).\n"
        "One move per beat can starve quiet goals. Prefer it this beat if it is ready and not\n"
        "clearly lower priority; otherwise say in the journal why you passed it over.\n"
    )


def _journal(lines: tuple[str, ...] | None, notes: dict[str, str]) -> _Body | None:
    if not lines:
        return None
    clipped = [_clip_line(ln, JOURNAL_LINE_CAP) for ln in lines]
    if any(len(_one_line(ln)) > JOURNAL_LINE_CAP for ln in lines):
        notes["journal line"] = f"journal lines cut at {JOURNAL_LINE_CAP} chars"
    return _Body("recent journal", "\n".join(clipped))


def _changes(lines: list[str], notes: dict[str, str]) -> str:
    shown = [_clip_line(_text(ln), CHANGE_LINE_CAP) for ln in lines[:CHANGE_LINES]]
    if any(len(_one_line(_text(ln))) > CHANGE_LINE_CAP for ln in lines[:CHANGE_LINES]):
        notes["what changed line"] = f"WHAT CHANGED lines cut at {CHANGE_LINE_CAP} chars"
    if len(lines) > CHANGE_LINES:
        left = len(lines) - CHANGE_LINES
        shown.append(marker(left, "more change" if left == 1 else "more changes"))
        notes["what changed"] = f"WHAT CHANGED cut at {CHANGE_LINES} lines"
    return "\n".join(shown)


def _shell(shell: dict[str, Any], notes: dict[str, str]) -> str:
    cmd = _text(shell.get("cmd"))
    secs = shell.get("secs")
    took = f"{secs:g}s" if isinstance(secs, int | float) and not isinstance(secs, bool) else ""
    if shell.get("timed_out") is True:
        status = f"timed out after {took}" if took else "timed out"
    else:
        status = f"exit {_text(shell.get('exit_code')) or '?'}"
        status += f" after {took}" if took else ""
    out = [f"$ {_keep_head(cmd, SHELL_CAP)}", status]
    for stream in ("stdout", "stderr"):
        text = _text(shell.get(stream)).rstrip("\n")
        if len(text) > SHELL_CAP:
            notes[f"run_shell {stream}"] = f"run_shell {stream} cut to its last {SHELL_CAP} chars"
        out.append(f"{stream}:")
        out.append(_keep_tail(text, SHELL_CAP) if text else "(empty)")
    return "\n".join(out)


def _failure(clock: Clock, fail: dict[str, Any], notes: dict[str, str]) -> tuple[str, str]:
    """(header line, error body) for LAST FAILURE."""
    bits = []
    if fail.get("run_id") is not None:
        bits.append(f"run {_one_line(_text(fail.get('run_id')))}")
    if fail.get("code") is not None:
        bits.append(_one_line(_text(fail.get("code"))))
    if fail.get("fails") is not None:
        bits.append(f"fail #{_one_line(_text(fail.get('fails')))}")
    ts = fail.get("ts")
    if isinstance(ts, int | float) and not isinstance(ts, bool) and ts > 0:
        try:
            bits.append("at " + offset_stamp(clock.local(float(ts))))
        except (OverflowError, OSError, ValueError):
            pass
    head = "The previous beat failed and its move was not executed"
    head += f" ({' · '.join(bits)}):" if bits else ":"
    error = _text(fail.get("error")).strip() or "(no error text recorded)"
    if len(error) > FAILURE_CAP:
        notes["last failure"] = f"last failure error cut at {FAILURE_CAP} chars"
    return head, _keep_head(error, FAILURE_CAP)


# ---------------------------------------------------------------- build


def build_prompt(
    ctx: Ctx, knobs: Knobs, extras: PromptExtras, snapshot: Snapshot | None = None
) -> BuiltPrompt:
    """The beat's prompt: its files read in one step (its readings: the beat's `snapshot`),
    then rendered."""
    return render_prompt(gather_inputs(ctx, snapshot), knobs, extras)


def render_prompt(inputs: PromptInputs, knobs: Knobs, extras: PromptExtras) -> BuiltPrompt:
    """The prompt from values alone (no file is read here)."""
    notes: dict[str, str] = {}
    head: list[Part] = [
        instructions(knobs.num("max_next_interval"), extras.actions) + "\n",
        f"\n{CONSTITUTION_HEADER}\n",
        inputs.constitution.rstrip("\n") + "\n",
    ]
    shown: list[tuple[str, str]] = []
    parts: list[Part] = [
        *_playbook_section(inputs.playbook, notes),
        *_goals_section(inputs.goals, notes),
        *_readings_section(inputs, notes, shown),
        *_live_sections(inputs, extras),
        *_journal_section(inputs.journal, notes),
        # volatile from here on: nothing above may depend on the clock or on one beat's events
        *_ages_section(inputs, shown),
        *_volatile_sections(inputs, extras, notes),
    ]
    now = (
        f"\n{NOW_HEADER}\n"
        f"Local time: {offset_stamp(inputs.clock.local())}\n"
        f"Data dir: {inputs.data_dir}\n"
        "Write the one decision to .decision.json now, then stop.\n"
    )
    text = _fit(head, parts, now, knobs.num("prompt_max_bytes"), notes)
    return BuiltPrompt(text=text, truncated=list(notes.values()), shown=tuple(shown))


def _playbook_section(playbook: str | None, notes: dict[str, str]) -> list[Part]:
    if playbook is None or not playbook.strip():
        return ["\n=== PLAYBOOK ===\n", "(no PLAYBOOK yet)\n"]
    return ["\n=== PLAYBOOK ===\n", _capped_body("PLAYBOOK", playbook, PLAYBOOK_CAP, notes)]


def _goals_section(goals: tuple[tuple[str, str], ...], notes: dict[str, str]) -> list[Part]:
    parts: list[Part] = ["\n=== GOALS ===\n"]
    for name, body in goals:
        text = _capped_body(f"goal {_one_line(name)} body", body, GOAL_CAP, notes)
        parts.append(_Item("goal", [f"--- {_one_line(name)}\n", text]))
    if not goals:
        parts.append("(no goals yet)\n")
    return [*parts, _Gap("goal")]


def _readings_section(
    inputs: PromptInputs, notes: dict[str, str], shown: list[tuple[str, str]]
) -> list[Part]:
    """Each reading (sys-sessions and sys-goals: each worker and goal) as one item, the ones
    unchanged since the last prompt first in its order, the ones that changed last."""
    parts: list[Part] = ["\n=== SENSOR READINGS ===\n"]
    readings = inputs.readings
    items = [
        (f"reading:{label}", text, label) for r in readings for label, text in reading_items(r)
    ]
    for key, text, label in by_change(items, inputs.shown):
        shown.append((key, digest(text)))
        name = _one_line(label)
        body = _capped_body(f"sensor reading {name}", text, SNAPSHOT_CAP, notes)
        parts.append(_Item("sensor reading", [f"--- {name}\n", body]))
    if not readings:
        parts.append("(no readings)\n")
    return [*parts, _Gap("sensor reading")]


def _ages_section(inputs: PromptInputs, shown: list[tuple[str, str]]) -> list[Part]:
    """The ages sys-sessions and sys-goals carry, as of this beat: volatile, so listed here at
    the end and not in SENSOR READINGS; the lines that did not move keep their order."""
    lines = [(key, _one_line(line), None) for key, line in ages_lines(inputs.readings)]
    if not lines:
        return []
    ordered = by_change([(f"age:{k}", t, p) for k, t, p in lines], inputs.shown)
    shown += [(k, digest(t)) for k, t, _ in ordered]
    return [
        "\n=== AGES (seconds, as of this beat) ===\n",
        "Ages from sys-sessions (workers) and sys-goals, kept out of SENSOR READINGS because\n"
        "they grow every beat:\n",
        _Body("AGES", "\n".join(t for _, t, _ in ordered) + "\n"),
    ]


def _live_sections(inputs: PromptInputs, extras: PromptExtras) -> list[Part]:
    """WORKERS, PENDING ASKS and FAIRNESS, each only when it has something to say."""
    parts: list[Part] = []
    if extras.workers and extras.workers.strip():
        parts += ["\n=== WORKERS ===\n", _Body("WORKERS", extras.workers)]
    if extras.asks and extras.asks.strip():
        parts += [f"\n=== {ASKS_TITLE} ===\n", _Body("PENDING ASKS", extras.asks)]
    if inputs.goals:
        ids = [name[:-3] for name, _ in inputs.goals]  # the file names end in .md
        parts += ["\n=== FAIRNESS (computed by looop) ===\n", _fairness(inputs, ids)]
    return parts


def _journal_section(lines: tuple[str, ...] | None, notes: dict[str, str]) -> list[Part]:
    journal = _journal(lines, notes)
    return ["\n=== RECENT JOURNAL ===\n", journal if journal is not None else "(empty)\n"]


def _volatile_sections(
    inputs: PromptInputs, extras: PromptExtras, notes: dict[str, str]
) -> list[Part]:
    """What one beat brings: changes, the last run_shell, flapping sensors, the last failure."""
    parts: list[Part] = []
    if extras.changes:
        parts += [
            "\n=== WHAT CHANGED ===\n",
            "Since the last decision that was carried out:\n",
            _Body("WHAT CHANGED", _changes(extras.changes, notes)),
        ]
    if extras.last_shell:
        parts += [
            "\n=== RUN_SHELL OUTPUT ===\n",
            "The command you ran with run_shell last beat (shown once):\n",
            _Body("RUN_SHELL OUTPUT", _shell(extras.last_shell, notes)),
        ]
    told = [_one_line(_text(n)) for n in extras.flap_notes if _text(n).strip()]
    if told:
        damped = [_one_line(_text(n)) for n in extras.flapping if _text(n).strip()]
        parts += [
            "\n=== FLAPPING SENSORS ===\n",
            "A sensor whose .signal keeps changing stops waking the loop until it settles; its\n"
            "reading above stays current. A timestamp or counter probably leaked into its signal:\n"
            "fix it with write_sensor (volatile values belong in detail). Since your last move:\n",
            _Body("FLAPPING SENSORS", "\n".join(f"- {n}" for n in told)),
            f"Damped now: {', '.join(damped) if damped else '(none)'}\n",
        ]
    if extras.provider_limit:
        parts += [
            "\n=== PROVIDER LIMIT ===\n",
            _Body("PROVIDER LIMIT", extras.provider_limit),
        ]
    if extras.last_failure:
        fail_head, fail_body = _failure(inputs.clock, extras.last_failure, notes)
        parts += [
            f"\n=== {FAILURE_TITLE} ===\n",
            fail_head + "\n",
            _Body("LAST FAILURE", fail_body),
            "Do not emit the same move again unchanged: fix what the error names, choose a\n"
            "different move, or noop with a reason.\n",
        ]
    return parts


def _fit(head: list[Part], parts: list[Part], now: str, limit: int, notes: dict[str, str]) -> str:
    """Keep the prompt under `limit` bytes (0: no limit) as v1.0 does: the budget is spent in
    section order, so goals come before sensor readings, and an item that does not fit is
    left out whole (a marker in its section counts them). Everything else is capped per item
    and never cut here: the instructions, constitution, PLAYBOOK, asks, journal and NOW."""
    every = [*head, *parts, now]
    if limit <= 0 or _size(_render(every)) <= limit:
        return _render(every)
    items = [p for p in parts if isinstance(p, _Item)]
    gaps = [p for p in parts if isinstance(p, _Gap)]
    for gap in gaps:  # room for each marker at its largest count
        gap.limit, gap.left_out = limit, sum(1 for i in items if i.kind == gap.kind)
    for item in items:
        item.kept = False
    room = limit - _size(_render(every))
    for item in items:
        size = _size(item.render())
        item.kept = size <= room
        room -= size if item.kept else 0
    for gap in gaps:
        gap.left_out = sum(1 for i in items if i.kind == gap.kind and not i.kept)
        if gap.left_out:
            n = gap.left_out
            what = f"{n} {gap.kind}{'' if n == 1 else 's'}"
            notes[gap.kind] = f"{what} left out (total prompt over {limit} bytes)"
    text = _render(every)
    over = _size(text) - limit
    if over > 0:
        notes["total prompt"] = (
            f"total prompt {over} bytes over its {limit}-byte cap: its fixed sections are never cut"
        )
    return text
