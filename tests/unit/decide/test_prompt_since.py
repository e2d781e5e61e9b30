"""READINGS THAT MOVE shown as drawn, the news under SINCE THEN, and the record that carries
both from one decide to the next (issue 54)."""

from __future__ import annotations

import json
from typing import Any

from looop.act.actiontable import taught
from looop.core.context import Ctx
from looop.decide.order import ORDER_FILE, read_record, write_shown
from looop.decide.prompt import PromptExtras, build_prompt
from looop.decide.promptshown import FOLD_EVERY, LEFT_CAP, REDRAW_CHARS


def _reading(ctx: Ctx, name: str, value: dict[str, Any]) -> None:
    ctx.paths.snapshots.mkdir(exist_ok=True)
    (ctx.paths.snapshots / f"{name}.json").write_text(json.dumps(value) + "\n")


def _decide(ctx: Ctx) -> str:
    built = build_prompt(ctx, ctx.knobs(), PromptExtras(actions=taught()))
    write_shown(ctx.paths.data, built.shown)
    return built.text


def _shared(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def _since(text: str) -> str:
    if "=== SINCE THEN" not in text:
        return ""  # nothing changed since the drawing
    return text[text.index("=== SINCE THEN") : text.index("=== NOW")]


def test_the_journal_line_a_decide_adds_comes_after_all_the_last_prompt_showed(
    ctx: Ctx,
) -> None:
    _reading(ctx, "sensor-a", {"signal": {"n": 1}})
    ctx.paths.journal.write_text("- 2025-06-14 10:00 noop 0\n")
    first = _decide(ctx)
    with ctx.paths.journal.open("a") as f:
        f.write("- 2025-06-14 10:01 noop 1\n")
    _reading(ctx, "sensor-a", {"signal": {"n": 2}})
    second = _decide(ctx)
    assert _shared(first, second) >= first.index("\n=== NOW")
    since = _since(second)
    assert since.index("--- journal\n- 2025-06-14 10:01 noop 1\n") < since.index("--- sensor-a")
    assert "noop 1" not in second[: second.index("=== SINCE THEN")]


def test_a_redraw_draws_again_only_the_end_of_the_drawing(ctx: Ctx) -> None:
    """A redraw costs the cache only the drawing's last items: a reading early in it that
    changed keeps its drawn place and bytes, its news still listed under SINCE THEN."""
    names = [f"sensor-{n:02}" for n in range(40)]
    note = "steady " * 12
    for name in names:
        _reading(ctx, name, {"signal": {"n": 0, "note": note}})
    _decide(ctx)
    _reading(ctx, names[0], {"signal": {"n": 1, "note": note}})
    _reading(ctx, names[-1], {"signal": {"n": 1, "note": note}})
    texts = [_decide(ctx) for _ in range(FOLD_EVERY)]
    before, redrawn = texts[-2], texts[-1]
    drawn = redrawn[redrawn.index("=== READINGS THAT MOVE") : redrawn.index("=== RECENT")]
    assert f'--- {names[0]}.json\n{{"signal":{{"n":0,' in drawn  # as drawn
    assert drawn.rindex(f'--- {names[-1]}.json\n{{"signal":{{"n":1,') > drawn.index(names[-2])
    assert f"--- {names[0]}.json" in _since(redrawn)
    assert f"--- {names[-1]}.json" not in _since(redrawn)
    kept = _shared(before, redrawn)
    assert len(redrawn[kept:]) < REDRAW_CHARS + len(redrawn[redrawn.index("=== RECENT") :])


def _drawn(text: str) -> str:
    return text[text.index("=== READINGS THAT MOVE") : text.index("=== RECENT")]


def test_a_redraw_draws_earlier_news_again_at_the_end_not_the_whole_drawing(ctx: Ctx) -> None:
    """When the news of readings early in the drawing would crowd SINCE THEN, a redraw draws
    them again after the drawing's end, their old entries left in place: the cache keeps the
    drawing up to its end, where a redraw from the first of them would lose it all."""
    names = [f"sensor-{n:02}" for n in range(40)]
    note = "steady " * 12
    for name in names:
        _reading(ctx, name, {"signal": {"n": 0, "note": note}})
    _decide(ctx)
    early = names[: LEFT_CAP // 100 + 2]  # each reading's news ~120 chars: past LEFT_CAP
    for name in early:
        _reading(ctx, name, {"signal": {"n": 1, "note": note}})
    texts = [_decide(ctx) for _ in range(FOLD_EVERY)]
    before, redrawn = texts[-2], texts[-1]
    drawn = _drawn(redrawn)
    for name in early:
        old, new = f'--- {name}.json\n{{"signal":{{"n":0,', f'--- {name}.json\n{{"signal":{{"n":1,'
        assert drawn.index(old) < drawn.index(names[-1]) < drawn.index(new)
        assert f"--- {name}.json" not in _since(redrawn)
    assert "or twice: the later counts" in drawn
    kept = _shared(before, redrawn)
    assert kept > redrawn.index(f"--- {names[-5]}.json")  # all but the drawing's last items
    assert len(redrawn[kept:]) < REDRAW_CHARS + 2 * LEFT_CAP + len(
        redrawn[redrawn.index("=== RECENT") :]
    )


def test_a_drawing_whose_old_entries_outgrow_the_rest_is_drawn_whole(ctx: Ctx) -> None:
    """Entries a later one supersedes are kept only while they are under half of the rest:
    then the drawing is drawn whole, each reading once."""
    names = [f"sensor-{n:02}" for n in range(40)]
    note = "steady " * 12
    for name in names:
        _reading(ctx, name, {"signal": {"n": 0, "note": note}})
    _decide(ctx)
    for n in (1, 2):
        for name in names[:25]:
            _reading(ctx, name, {"signal": {"n": n, "note": note}})
        texts = [_decide(ctx) for _ in range(FOLD_EVERY)]
        drawn = _drawn(texts[-1])
        twice = [name for name in names if drawn.count(f"--- {name}.json") > 1]
        assert twice == (names[:25] if n == 1 else [])
    assert drawn.index(f"--- {names[25]}.json") < drawn.index(f"--- {names[0]}.json")


def test_the_record_keeps_the_drawing_the_news_and_each_fields_changes(ctx: Ctx) -> None:
    _reading(ctx, "sensor-a", {"signal": {"n": 1}, "detail": {"runs": 1}})
    _decide(ctx)
    _reading(ctx, "sensor-a", {"signal": {"n": 2}, "detail": {"runs": 2}})
    built = build_prompt(ctx, ctx.knobs(), PromptExtras(actions=taught()))
    write_shown(ctx.paths.data, built.shown)
    got = read_record(ctx.paths.data)
    assert got == built.shown
    assert [k for k, _, _ in got.log] == ["late:sensor-a.json"] and got.base_age == 1
    assert got.history["reading:sensor-a.json"] == {'["detail", "runs"]': "1", '["signal"]': "1"}


def test_a_broken_record_is_an_empty_one_and_the_prompt_is_still_made(ctx: Ctx) -> None:
    _reading(ctx, "sensor-a", {"signal": {"n": 1}})
    broken = {
        "base": "x",
        "log": [[1, 2, 3], ["k", "t"]],
        "base_age": 1e300,
        "history": {"a": 5, "b": {"c": 1}},
        "shown": {"not": "a list"},
    }
    (ctx.paths.data / ORDER_FILE).write_text(json.dumps(broken))
    got = read_record(ctx.paths.data)
    assert (got.base, got.log, got.base_age, got.shown) == ((), (), 0, ())
    assert all(not v for v in got.history.values())
    assert '--- sensor-a.json\n{"signal":{"n":1}}' in _decide(ctx)


def test_a_reading_that_comes_later_is_told_after_all_the_last_prompt_showed(ctx: Ctx) -> None:
    """A new sensor (or a worker started) would move SENSOR READINGS' bytes: its settled fields
    are told under SINCE THEN until SENSOR READINGS is drawn afresh, and its signal too."""
    for name in ("sensor-a", "sensor-c"):
        _reading(ctx, name, {"signal": {"n": 1}, "detail": {"note": f"{name} steady"}})
    first = _decide(ctx)
    _reading(ctx, "sensor-b", {"signal": {"n": 1}, "detail": {"note": "sensor-b steady"}})
    second = _decide(ctx)
    assert _shared(first, second) >= first.index("\n=== NOW")
    since = _since(second)
    assert '--- sensor-b.json\n{"detail":{"note":"sensor-b steady"}}' in since
    assert '--- sensor-b.json\n{"signal":{"n":1}}' in since
    texts = [_decide(ctx) for _ in range(FOLD_EVERY)]
    readings = texts[-1][: texts[-1].index("=== READINGS THAT MOVE")]
    assert "sensor-b" not in readings and "sensor-a steady" in readings
    assert '"note":"sensor-b steady"' in _since(texts[-1])
