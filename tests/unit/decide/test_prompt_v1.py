"""v1.0's prompt cases replayed (the reference looop's own tests of its prompt builder and its
WHAT CHANGED diff): what users of v1.0 rely on holds here too."""

from __future__ import annotations

import json
from dataclasses import replace

from looop.act.actiontable import taught
from looop.core.context import Ctx
from looop.decide.prompt import BuiltPrompt, PromptExtras, build_prompt
from looop.loop.world import describe_changes

CONSTITUTION = "=== CONSTITUTION (immutable — overrides PLAYBOOK) ==="


def _section(text: str, header: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index(header) + 1
    end = start
    while end < len(lines) and not lines[end].startswith("=== "):
        end += 1
    return [ln for ln in lines[start:end] if ln]


def _build(ctx: Ctx, budget: int | None = None, extras: PromptExtras | None = None) -> BuiltPrompt:
    if budget is not None:
        ctx = replace(ctx, env={**ctx.env, "LOOOP_PROMPT_MAX_BYTES": str(budget)})
    return build_prompt(ctx, ctx.knobs(), extras or PromptExtras(actions=taught()))


def _fixture(ctx: Ctx) -> None:
    """v1.0's fixture: a PLAYBOOK and one goal, `triage`."""
    ctx.paths.playbook.write_text("PB RULES\n")
    ctx.paths.goals.mkdir(exist_ok=True)
    ctx.paths.goal("triage").write_text("triage the inbox\n")


def _reading(ctx: Ctx, name: str, fill: str, n: int) -> None:
    ctx.paths.snapshots.mkdir(exist_ok=True)
    body = {"signal": {"n": 1}, "detail": fill * n}
    (ctx.paths.snapshots / f"{name}.json").write_text(json.dumps(body) + "\n")


def _changes_shown(ctx: Ctx, changes: list[str]) -> list[str]:
    built = _build(ctx, extras=PromptExtras(actions=taught(), changes=changes))
    return _section(built.text, "=== WHAT CHANGED ===")


def test_what_changed_counts_every_change_left_out_past_200(ctx: Ctx) -> None:
    new = {f"goal:g{i:03}": "h" for i in range(230)}
    shown = _changes_shown(ctx, describe_changes({}, new))
    assert shown[0] == "Since the last decision that was carried out:"
    listed = [ln for ln in shown if ln.startswith("+ goal:")]
    assert len(listed) == 200 and listed[-1] == "+ goal:g199 appeared"
    assert shown[-1] == "[… truncated by looop: 30 more changes …]"


def test_one_change_left_out_is_said_in_the_singular(ctx: Ctx) -> None:
    new = {f"goal:g{i:03}": "h" for i in range(201)}
    shown = _changes_shown(ctx, describe_changes({}, new))
    assert shown[-1] == "[… truncated by looop: 1 more change …]"


def test_what_changed_names_the_items_that_woke_the_loop(ctx: Ctx) -> None:
    """v1.0: a moved sensor signal and a new goal, each on its own line, below the journal."""
    old = {"playbook": "p", "goal:triage": "t", "snap:sensor-gh": '{"open":3}'}
    new = {**old, "snap:sensor-gh": '{"open":5}', "goal:new": "n"}
    built = _build(ctx, extras=PromptExtras(actions=taught(), changes=describe_changes(old, new)))
    shown = _section(built.text, "=== WHAT CHANGED ===")
    assert '~ snap:sensor-gh signal: {"open":3} → {"open":5}' in shown
    assert "+ goal:new appeared" in shown
    text = built.text
    assert text.index("=== RECENT JOURNAL ===") < text.index("=== WHAT CHANGED ===")
    assert text.index("=== WHAT CHANGED ===") < text.index("=== NOW ===")


def test_a_budget_below_the_fixed_sections_drops_every_goal_whole_and_keeps_the_rest(
    ctx: Ctx,
) -> None:
    """v1.0's aggregate_budget case: at a 1-byte budget both goals are left out behind a
    visible marker; the instructions, constitution, PLAYBOOK and NOW stay."""
    _fixture(ctx)
    ctx.paths.goal("bulk").write_text("BULK-SENTINEL\n")
    built = _build(ctx, budget=1)
    text = built.text
    assert "BULK-SENTINEL" not in text and "triage the inbox" not in text
    assert _section(text, "=== GOALS ===") == [
        "[… truncated by looop: 2 goals left out to keep the prompt under 1 bytes — "
        "archive or merge goals …]"
    ]
    assert _section(text, "=== PLAYBOOK ===") == ["PB RULES"]
    assert "5. write_playbook may refine" in "\n".join(_section(text, CONSTITUTION))
    assert text.rstrip().endswith("then stop.")
    assert "2 goals left out (total prompt over 1 bytes)" in built.truncated
    # the default budget keeps everything, with no marker
    whole = _build(ctx).text
    assert "BULK-SENTINEL" in whole and "triage the inbox" in whole
    assert "truncated by looop" not in whole


def test_a_tight_budget_keeps_playbook_and_goals_and_stops_readings_at_the_first_misfit(
    ctx: Ctx,
) -> None:
    """The budget is spent in section order: PLAYBOOK and goals first; the first sensor
    reading that does not fit is left out whole (never cut mid-body) and the section stops
    there, as v1.0 does: a later one that would fit is left out too."""
    _fixture(ctx)
    ctx.paths.goal("ship").write_text("goal: ship v2\n" + "s" * 3000 + "\n")
    _reading(ctx, "sensor-a", "a", 3000)
    _reading(ctx, "sensor-b", "b", 3000)
    _reading(ctx, "sensor-c", "c", 40)
    full = _build(ctx).text
    b_size = len(json.dumps({"signal": {"n": 1}, "detail": "b" * 3000})) + 20
    budget = len(full.encode()) - b_size + 400  # room for all but sensor-b, and markers
    built = _build(ctx, budget=budget)
    text = built.text
    assert len(text.encode()) <= budget
    assert "PB RULES" in text and "triage the inbox" in text and "s" * 3000 in text
    readings = _section(text, "=== SENSOR READINGS ===")
    assert "--- sensor-a.json" in readings and "--- sensor-c.json" not in readings
    assert "--- sensor-b.json" not in readings and "b" * 100 not in text
    assert readings[-1].startswith("[… truncated by looop: 2 sensor readings left out")
    assert "a" * 3000 in text and "more chars" not in text  # kept readings are whole


def test_a_zero_budget_is_no_limit(ctx: Ctx) -> None:
    """v1.0: LOOOP_PROMPT_MAX_BYTES=0 means no limit, as every sibling knob's 0 does."""
    zero = replace(ctx, env={**ctx.env, "LOOOP_PROMPT_MAX_BYTES": "0"})
    assert zero.knobs().num("prompt_max_bytes") == 0
    ctx.paths.goals.mkdir(exist_ok=True)
    for i in range(40):  # 40 goals of 7,000 chars: over the 256 KB default
        ctx.paths.goal(f"g{i:02}").write_text(f"goal {i} " + "x" * 7000 + "\n")
    built = _build(ctx, budget=0)
    assert len(built.text.encode()) > 262144
    assert all(f"--- g{i:02}.md" in built.text for i in range(40))
    assert built.truncated == []
    capped = _build(ctx)  # the default still caps
    assert len(capped.text.encode()) <= 262144 and capped.truncated
