"""The tick prompt: everything the decider sees, stable prefix first, volatile sections last."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from looop.core.context import Ctx
from looop.core.readings import Snapshot
from looop.decide.order import Record
from looop.decide.promptfit import Body, Part, fit, marker
from looop.decide.promptinputs import PromptInputs, gather_inputs
from looop.decide.promptshown import Seen, body, clip_line, one_line, readings_sections
from looop.home.clock import Clock, offset_stamp
from looop.home.config import Knobs
from looop.home.where import DECISION

# Per-item caps, in characters.
PLAYBOOK_CAP = 16000
FAILURE_CAP = 2000
SHELL_CAP = 2000
CHANGE_LINE_CAP = 240
CHANGE_LINES = 200

CONSTITUTION_HEADER = "=== CONSTITUTION (immutable — overrides PLAYBOOK) ==="
NOW_HEADER = "=== NOW ==="

# Section titles as v1.0 words them: the title itself carries the instruction
ASKS_TITLE = "PENDING ASKS (waiting on the human — not yours to answer)"
FAILURE_TITLE = "LAST FAILURE (your last decision failed — do not repeat it)"


def _keep_head(s: str, cap: int) -> str:
    return s if len(s) <= cap else s[:cap].rstrip("\n") + "\n" + marker(len(s) - cap)


def _text(v: Any) -> str:
    return "" if v is None else str(v)


@dataclass
class PromptExtras:
    actions: str  # the reference of every action the decider may take (act/actiontable)
    changes: list[str] = field(default_factory=list)  # WHAT CHANGED lines, already formatted
    last_failure: dict[str, Any] | None = None  # {"run_id","code","error","fails","ts"}
    # {"cmd","exit_code","timed_out","secs","stdout","stderr"}
    last_shell: dict[str, Any] | None = None
    flapping: list[str] = field(default_factory=list)  # snapshot names damped now
    flap_notes: list[str] = field(default_factory=list)  # started/settled, told once
    workers: str | None = None  # pre-rendered WORKERS body
    asks: str | None = None  # pre-rendered PENDING ASKS body
    provider_limit: str | None = None  # the runner waited out a usage limit: told once
    decision_file: str | None = None  # where the decision goes; None: the data dir's


@dataclass
class BuiltPrompt:
    text: str
    truncated: list[str]  # human notes of what was cut
    shown: Record = field(default_factory=Record)  # what it showed, for the next (order.py)


# ---------------------------------------------------------------- sections


def _fairness(inputs: PromptInputs) -> list[Part]:
    """The goal acted on longest ago (never = 0, corrupt = never); ties go to the first."""
    if not inputs.goals:
        return []

    def acted(gid: str) -> float:
        v = inputs.goal_activity.get(gid)
        ts = float(v) if isinstance(v, int | float) and not isinstance(v, bool) else 0.0
        return 0.0 if ts != ts else ts  # NaN: never

    gid = min((name[:-3] for name, _ in inputs.goals), key=acted)  # the file names end in .md
    ts = acted(gid)
    if ts <= 0:
        when = "never acted on"
    else:
        try:
            when = "last acted on " + offset_stamp(inputs.clock.local(ts))
        except (OverflowError, OSError, ValueError):
            when = "acted on long ago"
    # what to do with it: instructions
    line = f"Most neglected goal: `{one_line(gid)}` ({when}).\n"
    return ["\n=== FAIRNESS (computed by looop) ===\n", line]


def _changes(lines: list[str], notes: dict[str, str]) -> str:
    cap, what = CHANGE_LINE_CAP, "WHAT CHANGED line"
    shown = [clip_line(_text(ln), notes, cap, what) for ln in lines[:CHANGE_LINES]]
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
            text = marker(len(text) - SHELL_CAP, "earlier chars") + "\n" + text[-SHELL_CAP:]
        out += [f"{stream}:", text or "(empty)"]
    return "\n".join(out)


def _failure(clock: Clock, fail: dict[str, Any], notes: dict[str, str]) -> tuple[str, str]:
    """(header line, error body) for LAST FAILURE."""
    bits = []
    if fail.get("run_id") is not None:
        bits.append(f"run {one_line(_text(fail.get('run_id')))}")
    if fail.get("code") is not None:
        bits.append(one_line(_text(fail.get("code"))))
    if fail.get("fails") is not None:
        bits.append(f"fail #{one_line(_text(fail.get('fails')))}")
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
    answer = extras.decision_file or os.path.join(inputs.data_dir, DECISION)
    head: list[Part] = [
        instructions(knobs.num("max_next_interval"), extras.actions) + "\n",
        f"\n{CONSTITUTION_HEADER}\n",
        inputs.constitution.rstrip("\n") + "\n",
    ]
    seen = Seen()
    readings, recent = readings_sections(inputs, notes, seen)
    pb = inputs.playbook
    parts: list[Part] = [
        # by how often each part changes: never (above), rarely, then every decide
        "\n=== PLAYBOOK ===\n",
        body("PLAYBOOK", pb, notes, PLAYBOOK_CAP) if pb and pb.strip() else "(no PLAYBOOK yet)\n",
        *readings.goals,
        *readings.settled,
        *_live_sections(extras),
        # redrawn together now and then; what came after them is appended below them
        *readings.moving,
        "\n=== RECENT JOURNAL ===\n",
        Body("recent journal", "\n".join(recent)) if recent else "(empty)\n",
        *readings.since,  # the journal's new lines and the changed readings, appended
        *_fairness(inputs),
        *readings.fast,  # the fields that change every beat
        # volatile from here on: nothing above may depend on one beat's events
        *_volatile_sections(inputs, extras, notes),
    ]
    now = (
        f"\n{NOW_HEADER}\n"
        f"Local time: {offset_stamp(inputs.clock.local())}\n"
        f"Data dir: {inputs.data_dir}\n"
        f"Decision file: {answer}\n"
        "Write the one decision to that file now, then stop.\n"
    )
    text = fit(head, parts, now, knobs.num("prompt_max_bytes"), notes)
    return BuiltPrompt(text=text, truncated=list(notes.values()), shown=seen.record())


def _live_sections(extras: PromptExtras) -> list[Part]:
    """WORKERS and PENDING ASKS, each only when it has something to say."""
    parts: list[Part] = []
    if extras.workers and extras.workers.strip():
        parts += ["\n=== WORKERS ===\n", Body("WORKERS", extras.workers)]
    if extras.asks and extras.asks.strip():
        parts += [f"\n=== {ASKS_TITLE} ===\n", Body("PENDING ASKS", extras.asks)]
    return parts


def _volatile_sections(
    inputs: PromptInputs, extras: PromptExtras, notes: dict[str, str]
) -> list[Part]:
    """What one beat brings: changes, the last run_shell, flapping sensors, the last failure."""
    parts: list[Part] = []
    if extras.changes:
        parts += [
            "\n=== WHAT CHANGED ===\n",
            "Since the last decision that was carried out:\n",
            Body("WHAT CHANGED", _changes(extras.changes, notes)),
        ]
    if extras.last_shell:
        parts += [
            "\n=== RUN_SHELL OUTPUT ===\n",
            "The command you ran with run_shell last beat (shown once):\n",
            Body("RUN_SHELL OUTPUT", _shell(extras.last_shell, notes)),
        ]
    told = [one_line(_text(n)) for n in extras.flap_notes if _text(n).strip()]
    if told:
        damped = [one_line(_text(n)) for n in extras.flapping if _text(n).strip()]
        parts += [
            "\n=== FLAPPING SENSORS ===\n",
            "A sensor whose .signal keeps changing stops waking the loop until it settles; its\n"
            "reading above stays current. A timestamp or counter probably leaked into its signal:\n"
            "fix it with write_sensor (volatile values belong in detail). Since your last move:\n",
            Body("FLAPPING SENSORS", "\n".join(f"- {n}" for n in told)),
            f"Damped now: {', '.join(damped) if damped else '(none)'}\n",
        ]
    if extras.provider_limit:
        parts += [
            "\n=== PROVIDER LIMIT ===\n",
            Body("PROVIDER LIMIT", extras.provider_limit),
        ]
    if extras.last_failure:
        fail_head, fail_body = _failure(inputs.clock, extras.last_failure, notes)
        parts += [
            f"\n=== {FAILURE_TITLE} ===\n",
            fail_head + "\n",
            Body("LAST FAILURE", fail_body),
            "Do not emit the same move again unchanged: fix what the error names, choose a\n"
            "different move, or noop with a reason.\n",
        ]
    return parts


# The decider's standing instructions: how to decide and the reference of every action,
# the first bytes of every tick prompt (kept byte-stable so the runner's prompt cache holds).
# The reference of the actions is handed in: it is the action table's own
# (act/actiontable.py `taught`), a room above this one.


_INSTRUCTIONS = r"""You are the decider of looop, a control loop that keeps someone's work moving. This run is
ONE disposable beat: you remember nothing between beats and everything you need is in this
prompt. looop's files are in its data dir; NOW names it and the file your decision goes in.

How to decide:
- Read the CONSTITUTION, PLAYBOOK, GOALS, SENSOR READINGS and the sections after them, then
  choose the single most important move.
- Decide from this prompt. If one fact is truly missing, you may make at most ONE narrow,
  read-only query first (read one file, run one status command).
- Write the move as exactly ONE JSON object to the Decision file named under NOW, then stop.
  looop validates and executes it and writes the journal line; you execute nothing yourself.
- Never edit PLAYBOOK.md, goals/, sensors/ or journal.md directly and never run a command with
  side effects: every change is a decision.
- The file holds bare JSON: no prose and no Markdown fence (one fence is forgiven; do not rely
  on it). If nothing needs doing, emit noop.
- One move per beat can starve quiet goals: prefer the goal FAIRNESS names as most neglected
  if it is ready and not clearly lower priority; otherwise say in the journal why you passed
  it over.

Actions ("action" picks one; fields marked ? are optional):
<ACTIONS>

Any action may also carry "journal", one line for journal.md (looop adds the time), and
"next_interval_s", seconds until the next beat (clamped to 5..<MAX_NEXT>). That beat decides
again even if nothing changed: use it for time-based follow-ups.
  {"action":"noop","reason":"deploy running","journal":"deploy running","next_interval_s":120}

Sensors: each sensors/<name>.sh prints one small JSON object {"signal":...,"detail":...}. Only
.signal is hashed, so only a changed signal wakes the loop: state that needs a decision goes
in signal; counts, ages and timestamps go in detail. Readings named sys-* come from looop
itself: sys-sessions (workers, their health, pending asks), sys-claims (names a worker holds:
leave those to it), sys-goals (when each goal was last acted on), sys-schedules, sys-asks.
SENSOR READINGS shows each reading's steady detail; READINGS THAT MOVE shows, per reading, its
signal, its ages (coarse) and the detail fields that change: read a reading in both.
A sensor reading whose detail names a worker (detail.worker) or its branch (detail.branch) is
that worker's news, repeated as "news" in the worker's item: the natural move is to tell that
worker with steer_session (one that has exited is resumed on its conversation), not to start
a new worker for it.

Irreversible work (merge, deploy, delete, publish, pay) is never your move: start a worker
that prepares it and asks a human, and wait for the answer."""  # noqa: E501


def instructions(max_next: int, actions: str) -> str:
    """The instructions with the reference of every action (`actions`, one entry per action:
    its fields, what it does, an example) in their place."""
    return _INSTRUCTIONS.replace("<MAX_NEXT>", str(max_next)).replace("<ACTIONS>", actions)
