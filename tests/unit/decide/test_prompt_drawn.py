"""GOALS and SENSOR READINGS shown as drawn, what changed of them told under SINCE THEN (issue
68 item 5): a goal the decider edits, or a reading's first changed detail field, no longer moves
the bytes early in the prompt (most of the next prompt uncached), and the decider still reads
every goal and reading as it is now."""

from __future__ import annotations

from looop.core.context import Ctx
from looop.decide.promptshown import CACHE_S, FOLD_EVERY
from tests.clocks import FixedClock
from tests.unit.decide.test_prompt_since import _decide, _reading, _shared

STEADY = "Keep the project moving: review the open pull requests and keep CI green.\n" * 4


def _section(text: str, title: str) -> str:
    start = text.index(f"=== {title}")
    end = text.find("\n=== ", start + 4)
    return text[start : end if end >= 0 else len(text)]


def _home(ctx: Ctx) -> None:
    ctx.paths.goals.mkdir(exist_ok=True)
    for g in ("g1", "g2", "g3"):
        ctx.paths.goal(g).write_text(f"# {g}\n{STEADY}")
    ctx.paths.snapshots.mkdir(exist_ok=True)
    for name in ("sensor-a", "sensor-b"):
        _reading(ctx, name, {"signal": {"ok": True}, "detail": {"owner": "me", "note": STEADY}})


def test_a_goal_edit_keeps_the_prefix_and_its_new_text_is_told_late(ctx: Ctx) -> None:
    """The decider's own write_goal: every byte up to SINCE THEN repeats the last prompt, and
    SINCE THEN gives the goal's new text (the decider must not act on the old one)."""
    _home(ctx)
    first = _decide(ctx)
    ctx.paths.goal("g1").write_text("# g1\nShip the release on Friday; the API is frozen.\n")
    second = _decide(ctx)
    assert _shared(first, second) >= second.index("\n=== SINCE THEN")
    since = _section(second, "SINCE THEN")
    assert "--- goal g1.md\n# g1\nShip the release on Friday; the API is frozen.\n" in since
    ctx.paths.goal("g4").write_text("# g4\nA new goal.\n")
    ctx.paths.goal("g2").unlink()
    since = _section(_decide(ctx), "SINCE THEN")
    assert "--- goal g4.md\n# g4\nA new goal.\n" in since
    assert "--- goal g2.md\n(gone: no longer there)\n" in since
    assert "Ship the release on Friday" in since  # the earlier news stays told


def test_a_readings_first_changed_detail_keeps_the_prefix_and_its_value_is_told(
    ctx: Ctx,
) -> None:
    _home(ctx)
    first = _decide(ctx)
    _reading(ctx, "sensor-a", {"signal": {"ok": True}, "detail": {"owner": "you", "note": STEADY}})
    second = _decide(ctx)
    assert _shared(first, second) >= second.index("\n=== SINCE THEN")
    assert '"owner":"you"' in _section(second, "SINCE THEN")


def test_goals_and_readings_are_drawn_afresh_once_the_providers_cache_is_gone(
    ctx: Ctx, clock: FixedClock
) -> None:
    _home(ctx)
    _decide(ctx)
    ctx.paths.goal("g1").write_text("# g1\nShip the release on Friday.\n")
    clock.advance(CACHE_S - 60)
    assert "Ship the release" not in _section(_decide(ctx), "GOALS")  # the cache still holds
    clock.advance(CACHE_S)
    text = _decide(ctx)
    assert "--- g1.md\n# g1\nShip the release on Friday.\n" in _section(text, "GOALS")
    assert "=== SINCE THEN" not in text


def test_goals_are_drawn_afresh_once_their_news_outgrows_half_the_drawing(ctx: Ctx) -> None:
    _home(ctx)
    _decide(ctx)
    for n in range(1, 30):
        ctx.paths.goal("g1").write_text(f"# g1\nedit {n}: {STEADY}")
        text = _decide(ctx)
        if f"edit {n}:" in _section(text, "GOALS"):
            break
    assert 2 < n < 29  # told a few times under SINCE THEN, then drawn afresh
    assert "=== SINCE THEN" not in text


def _moving(ctx: Ctx) -> list[str]:
    """The home with 40 sensors more: READINGS THAT MOVE long enough that a redraw keeps most."""
    _home(ctx)
    names = [f"sensor-{n:02}" for n in range(40)]
    for name in names:
        _reading(ctx, name, {"signal": {"n": 0, "note": "steady " * 12}})
    return names


def test_a_goal_edit_is_drawn_with_the_readings_that_move_and_a_later_redraw_keeps_it(
    ctx: Ctx,
) -> None:
    """A redraw of READINGS THAT MOVE draws the goals' news into it, where the next redraws keep
    it in place: told under SINCE THEN it would follow every redraw, past the cache each time.
    GOALS stays as drawn, and the goal's new text is the last the decider reads of it."""
    names = _moving(ctx)
    _decide(ctx)
    ctx.paths.goal("g1").write_text("# g1\nShip the release on Friday; the API is frozen.\n")
    news = "--- goal g1.md\n# g1\nShip the release on Friday"
    _reading(ctx, names[-1], {"signal": {"n": 1, "note": "steady " * 12}})
    texts = [_decide(ctx) for _ in range(FOLD_EVERY)]
    assert news in _section(texts[-2], "SINCE THEN")  # told until the redraw
    assert news in _section(texts[-1], "READINGS THAT MOVE")
    assert "=== SINCE THEN" not in texts[-1] and "Friday" not in _section(texts[-1], "GOALS")
    _reading(ctx, names[-1], {"signal": {"n": 2, "note": "steady " * 12}})
    texts = [_decide(ctx) for _ in range(FOLD_EVERY)]
    before, redrawn = texts[-2], texts[-1]
    assert f'--- {names[-1]}.json\n{{"signal":{{"n":2,' in _section(redrawn, "READINGS THAT MOVE")
    assert _shared(before, redrawn) > redrawn.index(news)  # kept in place: in the cache
    assert redrawn.count("Ship the release on Friday") == 1


def test_a_goal_drawn_with_the_readings_that_move_is_told_again_when_it_changes_or_goes(
    ctx: Ctx, clock: FixedClock
) -> None:
    """Once drawn there, a goal's next edit is told under SINCE THEN (the later entry counts),
    a goal removed is told gone, and GOALS drawn afresh takes all of it back."""
    _moving(ctx)
    _decide(ctx)
    ctx.paths.goal("g1").write_text("# g1\nShip on Friday.\n")
    ctx.paths.goal("g2").write_text("# g2\nDocs current.\n")
    texts = [_decide(ctx) for _ in range(FOLD_EVERY)]
    assert "--- goal g2.md\n# g2\nDocs current.\n" in _section(texts[-1], "READINGS THAT MOVE")
    ctx.paths.goal("g1").write_text("# g1\nShip on Monday.\n")
    ctx.paths.goal("g2").unlink()
    text = _decide(ctx)
    since = _section(text, "SINCE THEN")
    assert "--- goal g1.md\n# g1\nShip on Monday.\n" in since and "Friday" not in since
    assert "--- goal g2.md\n(gone: no longer there)\n" in since
    assert text.rindex("Ship on Monday") > text.rindex("Ship on Friday")
    texts = [_decide(ctx) for _ in range(FOLD_EVERY)]  # drawn in its turn
    drawn = _section(texts[-1], "READINGS THAT MOVE")
    assert drawn.rfind("Ship on Friday") < drawn.rindex("Ship on Monday")  # the later counts
    assert "--- goal g2.md\n(gone: no longer there)\n" in drawn
    clock.advance(CACHE_S)
    text = _decide(ctx)
    assert "--- g1.md\n# g1\nShip on Monday.\n" in _section(text, "GOALS")
    assert "--- goal " not in text and "g2.md" not in text
