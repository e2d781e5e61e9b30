"""The prompt orders its readings by how recently each changed, so consecutive decides share
the longest prefix a provider's cache can bill at a tenth (issue 54)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from looop.act.actiontable import taught
from looop.core.context import Ctx
from looop.decide.order import ORDER_FILE, by_change, read_record, write_shown
from looop.decide.prompt import BuiltPrompt, PromptExtras, build_prompt
from looop.decide.promptshown import FOLD_EVERY
from tests.clocks import FixedClock


def _reading(ctx: Ctx, name: str, value: dict[str, Any]) -> None:
    ctx.paths.snapshots.mkdir(exist_ok=True)
    (ctx.paths.snapshots / f"{name}.json").write_text(json.dumps(value) + "\n")


def _decide(ctx: Ctx) -> BuiltPrompt:
    """One decide's prompt, its order recorded as loop/deciding records it."""
    built = build_prompt(ctx, ctx.knobs(), PromptExtras(actions=taught()))
    write_shown(ctx.paths.data, built.shown)
    return built


def _order(text: str) -> list[str]:
    return [ln[4:] for ln in text.splitlines() if ln.startswith("--- sensor-")]


def _shared(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def _between(text: str, start: str, end: str) -> str:
    return text[text.index(start) : text.index(end, text.index(start))]


def test_a_reading_that_changed_is_appended_and_the_rest_keep_their_place(ctx: Ctx) -> None:
    """The news of one sensor goes under SINCE THEN, after everything the last prompt showed:
    READINGS THAT MOVE keeps its bytes until it is redrawn, and the reading's last entry is
    its current value."""
    for name in ("sensor-a", "sensor-b", "sensor-c", "sensor-d"):
        _reading(ctx, name, {"signal": {"n": 1}})
    first = _decide(ctx).text
    assert _order(first) == ["sensor-a.json", "sensor-b.json", "sensor-c.json", "sensor-d.json"]
    _reading(ctx, "sensor-b", {"signal": {"n": 2}})
    second = _decide(ctx).text
    assert _shared(first, second) >= first.index("\n=== NOW")  # all the first, but NOW
    since = _between(second, "=== SINCE THEN", "=== NOW")
    assert _order(since) == ["sensor-b.json"] and '{"signal":{"n":2}}' in since
    _reading(ctx, "sensor-a", {"signal": {"n": 2}})
    _reading(ctx, "sensor-b", {"signal": {"n": 3}})
    third = _decide(ctx).text
    assert _shared(second, third) >= second.index("\n=== NOW")
    since = _between(third, "=== SINCE THEN", "=== NOW")
    assert _order(since) == ["sensor-b.json", "sensor-a.json", "sensor-b.json"]
    assert since.rindex('{"signal":{"n":3}}') > since.index("--- sensor-a.json")


def test_readings_that_move_are_redrawn_now_and_then_with_the_news_folded_in(ctx: Ctx) -> None:
    """At most every FOLD_EVERY prompts the drawing takes the news in: SINCE THEN empties and
    the changed reading shows its current value in its place, last."""
    for name in ("sensor-a", "sensor-b", "sensor-c"):
        _reading(ctx, name, {"signal": {"n": 0}})
    _decide(ctx)
    for n in range(1, FOLD_EVERY + 1):
        _reading(ctx, "sensor-a", {"signal": {"n": n}})
        text = _decide(ctx).text
    drawn = _between(text, "=== READINGS THAT MOVE", "=== RECENT JOURNAL")
    assert _order(drawn) == ["sensor-b.json", "sensor-c.json", "sensor-a.json"]
    assert f'{{"signal":{{"n":{FOLD_EVERY}}}}}' in drawn and "=== SINCE THEN" not in text


def test_a_reading_that_is_gone_is_said_gone(ctx: Ctx) -> None:
    for name in ("sensor-a", "sensor-b"):
        _reading(ctx, name, {"signal": {"n": 1}})
    _decide(ctx)
    (ctx.paths.snapshots / "sensor-a.json").unlink()
    since = _between(_decide(ctx).text, "=== SINCE THEN", "=== NOW")
    assert "--- sensor-a.json\n(gone: no longer there)" in since


def test_a_timestamp_in_a_detail_settles_at_the_end(ctx: Ctx) -> None:
    """A sensor whose detail moves every beat stops breaking the prefix of the steady ones."""
    _reading(ctx, "sensor-a-clock", {"signal": {}, "detail": {"at": "10:00:00"}})
    for name in ("sensor-b", "sensor-c"):
        _reading(ctx, name, {"signal": {"ok": True}, "detail": {"note": "steady " * 50}})
    first = _decide(ctx).text
    _reading(ctx, "sensor-a-clock", {"signal": {}, "detail": {"at": "10:01:30"}})
    second = _decide(ctx).text
    assert _order(second)[-1] == "sensor-a-clock.json"
    _reading(ctx, "sensor-a-clock", {"signal": {}, "detail": {"at": "10:03:00"}})
    third = _decide(ctx).text
    assert _shared(second, third) >= third.index("--- sensor-a-clock.json")
    assert _shared(second, third) > _shared(first, second)


def test_each_worker_is_its_own_item_and_its_ages_are_listed_apart(ctx: Ctx) -> None:
    workers = {
        f"w{i}": {"idle_s": 10 * i, "uptime_s": 100, "pending_tells": 0, "branch": f"b{i}"}
        for i in range(3)
    }
    signal = [{"id": f"w{i}", "state": "running", "exit_code": None} for i in range(3)]
    _reading(ctx, "sys-sessions", {"signal": signal, "detail": {"count": 3, "workers": workers}})
    text = _decide(ctx).text
    readings = text[text.index("=== SENSOR READINGS") : text.index("=== READINGS THAT MOVE")]
    assert "--- sys-sessions.json worker w1\n" in readings
    one = readings.split("--- sys-sessions.json worker w1\n")[1].splitlines()[0]
    assert json.loads(one) == {"detail": {"pending_tells": 0, "branch": "b1"}}
    assert "idle_s" not in readings
    late = text[text.index("=== READINGS THAT MOVE") :]
    one = late.split("--- sys-sessions.json worker w2\n")[1].splitlines()[0]
    assert json.loads(one) == {  # ages coarsely: the exact second would move it every beat
        "signal": {"id": "w2", "state": "running", "exit_code": None},
        "age": {"idle": "<1m", "uptime": "1-10m"},
    }


def test_a_missing_or_broken_record_is_name_order(ctx: Ctx) -> None:
    for name in ("sensor-b", "sensor-a"):
        _reading(ctx, name, {"signal": {"n": 1}})
    junk_record = '{"shown": 5, "fields": [1], "moving": {"k": 3}, "journal": 7, "journal_end": []}'
    for junk in ("not json", '{"a": 1}', '[["k"], 3, ["x", 5]]', junk_record, "[]", "null"):
        (ctx.paths.data / ORDER_FILE).write_text(junk)
        assert read_record(ctx.paths.data).shown == ()
        built = build_prompt(ctx, ctx.knobs(), PromptExtras(actions=taught()))
        assert _order(built.text) == ["sensor-a.json", "sensor-b.json"]


def test_by_change_keeps_unchanged_in_shown_order_then_changed_in_given_order() -> None:
    items = [("a", "1", 0), ("b", "2", 1), ("c", "3", 2), ("d", "4", 3)]
    shown = tuple((k, t, k) for k, t in [("c", "3"), ("a", "1"), ("b", "old")])
    assert [k for k, _, _ in by_change(items, shown)] == ["c", "a", "b", "d"]


def test_a_moving_detail_field_leaves_the_rest_of_its_reading_in_place(ctx: Ctx) -> None:
    """A field that changes every beat is listed apart, on one short line near the end: the
    reading's steady detail and its signal keep their bytes and place."""
    steady = {"source": "https://ci.example.com/p", "summary": "steady " * 40}
    for t in ("10:00:00", "10:01:30", "10:03:00"):
        _reading(ctx, "sensor-ci", {"signal": {"ok": True}, "detail": {**steady, "at": t}})
        _reading(ctx, "sensor-db", {"signal": {"ok": True}, "detail": steady})
        built = _decide(ctx)
    text = built.text
    readings = text[: text.index("=== FIELDS THAT CHANGE EVERY BEAT")]
    assert "10:03" not in readings and text.count('"summary"') == 2
    assert '\nsensor-ci.json: at="10:03:00"\n' in text
    _reading(ctx, "sensor-ci", {"signal": {"ok": True}, "detail": {**steady, "at": "10:04:30"}})
    after = _decide(ctx).text
    assert _shared(text, after) > text.index("=== FIELDS THAT CHANGE EVERY BEAT")
    assert '\nsensor-ci.json: at="10:04:30"\n' in after


def test_a_timestamp_that_moves_shows_as_its_age(ctx: Ctx) -> None:
    """A sensor's `checked_at` that moves every beat reads as its coarse age from NOW, which
    holds still; a timestamp that does not move keeps its exact value."""
    now = ctx.clock.now()

    def stamp(t: float) -> str:
        return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    for ago in (50, 25, 0):
        detail = {"checked_at": stamp(now - ago), "created_at": "2025-01-01T00:00:00Z"}
        _reading(ctx, "sensor-ci", {"signal": {"ok": True}, "detail": detail})
        text = _decide(ctx).text
    assert '"checked_at":"<1m ago"' in text and stamp(now) not in text
    assert '"created_at":"2025-01-01T00:00:00Z"' in text


def test_an_age_that_grows_within_its_span_leaves_the_prompt_alone(ctx: Ctx) -> None:
    def sessions(idle: int) -> None:
        worker = {"w1": {"idle_s": idle, "uptime_s": 4000, "pending_tells": 0}}
        signal = [{"id": "w1", "state": "running", "exit_code": None}]
        _reading(ctx, "sys-sessions", {"signal": signal, "detail": {"workers": worker}})

    sessions(700)
    first = _decide(ctx).text
    sessions(1900)  # 20 minutes more, the same span
    second = _decide(ctx).text
    assert '"age":{"idle":"10-60m","uptime":"1-6h"}' in second
    assert _shared(first, second) > second.index("=== NOW")
    sessions(3700)
    assert '"age":{"idle":"1-6h","uptime":"1-6h"}' in _decide(ctx).text


def test_a_decide_adds_its_journal_line_at_the_end_of_the_journal(ctx: Ctx) -> None:
    """The journal window keeps its first line while it can: one more line is one more line
    at the end, not every line shifted up (up to 30 lines, then back to the last 20)."""
    lines = [f"- 2025-06-14 10:{m:02} noop {m}" for m in range(25)]
    ctx.paths.journal.write_text("\n".join(lines) + "\n")
    first = _decide(ctx).text
    journal = first[first.index("=== RECENT JOURNAL") :].splitlines()
    assert journal[1] == lines[5] and len([ln for ln in journal if "noop" in ln]) == 20
    for m in range(25, 36):
        with ctx.paths.journal.open("a") as f:
            f.write(f"- 2025-06-14 10:{m:02} noop {m}\n")
        text = _decide(ctx).text
        if m < 35:  # the window holds its first line while it shows at most 30 lines
            last = f"- 2025-06-14 10:{m - 1:02} noop {m - 1}\n"
            assert _shared(first, text) >= first.index(last) + len(last)
            assert f"noop {m}\n" in text and "- 2025-06-14 10:05 noop 5\n" in text
        first = text
    assert "- 2025-06-14 10:15 noop 15\n" not in text  # past 30 lines: the last 20 again
    assert "- 2025-06-14 10:16 noop 16\n" in text


def test_at_the_cap_the_oldest_moving_parts_go_first_and_goals_and_playbook_stay(
    ctx: Ctx,
) -> None:
    """Over the total cap what moves is left out before any reading, the readings as drawn
    (which SINCE THEN may replace) before the news; the goals and the PLAYBOOK are the last to
    go."""
    ctx.paths.playbook.write_text("# PLAYBOOK\nShip before polish.\n")
    ctx.paths.goals.mkdir(exist_ok=True)
    for g in range(3):
        ctx.paths.goal(f"g{g}").write_text(f"goal g{g}: " + "keep me whole " * 30 + "\n")
    names = [f"sensor-{c}" for c in "abcdef"]
    for beat in range(3):  # sensor-f's signal changes after the drawing
        for name in names:
            n = beat if name == "sensor-f" else 0
            _reading(ctx, name, {"signal": {"n": n, "note": f"{name} " + "ok " * 80}})
        whole = _decide(ctx).text
    drawn = _between(whole, "=== READINGS THAT MOVE", "=== RECENT JOURNAL")
    assert _order(drawn) == [f"{name}.json" for name in names]
    limit = len(whole.encode()) - 600  # room for all but a few drawn readings
    tight = replace(ctx, env={**ctx.env, "LOOOP_PROMPT_MAX_BYTES": str(limit)})
    capped = build_prompt(tight, tight.knobs(), PromptExtras(actions=taught()))
    text = capped.text
    assert len(text.encode()) <= limit
    assert "Ship before polish." in text
    assert all(f"goal g{g}: keep me whole" in text for g in range(3))
    since = _between(text, "=== SINCE THEN", "=== NOW")
    assert '"n":2' in since  # the news is kept
    drawn = _between(text, "=== READINGS THAT MOVE", "=== RECENT JOURNAL")
    kept = _order(drawn)
    assert kept == [f"{name}.json" for name in names][len(names) - len(kept) :]
    assert 0 < len(kept) < len(names) and "moving reading" in drawn
    assert any("moving reading" in n for n in capped.truncated)


def test_a_busy_workers_output_time_gives_way_to_its_idle_age(ctx: Ctx) -> None:
    """An exact time that moves every beat is left out while the coarse age made from it is
    shown; a worker that has ended (no idle age) keeps its last output time."""
    workers = {
        "w1": {"idle_s": 5, "uptime_s": 900, "last_output_at": "2025-06-15T15:06:35Z"},
        "w2": {"idle_s": None, "uptime_s": None, "last_output_at": "2025-06-15T12:00:00Z"},
    }
    signal = [
        {"id": w, "state": s, "exit_code": None} for w, s in (("w1", "running"), ("w2", "exited"))
    ]
    _reading(ctx, "sys-sessions", {"signal": signal, "detail": {"count": 2, "workers": workers}})
    text = _decide(ctx).text
    one = text.split("--- sys-sessions.json worker w1\n")
    assert "2025-06-15T15:06:35Z" not in text
    assert '"age":{"idle":"<1m","uptime":"10-60m"}' in one[-1].splitlines()[0]
    assert "2025-06-15T12:00:00Z" in text  # w2 ended: its last output time is the news


def test_a_goal_shows_when_it_was_acted_on_and_not_its_age_too(ctx: Ctx) -> None:
    """A goal's age crosses spans between acts; when it was last acted on changes once per act
    and says the same, so it is what the prompt shows; a goal never acted on shows neither."""
    goals = {
        "g1": {"last_acted": "2025-06-15T15:00:00Z", "last_acted_unix": 1749999600, "age_s": 400},
        "g2": {"last_acted": None, "last_acted_unix": None, "age_s": None},
    }
    _reading(ctx, "sys-goals", {"signal": {}, "detail": {"goals": goals}})
    text = _decide(ctx).text
    g1 = text.split("--- sys-goals.json goal g1\n")[-1].splitlines()[0]
    assert json.loads(g1) == {"detail": {"last_acted": "2025-06-15T15:00:00Z"}}
    assert "1749999600" not in text and '"age":' not in text


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _FreshHome:
    """Two CI sensors stamping when they checked and counting their runs, three steady ones, a
    busy worker (its output fresh, its spend growing) and two idle ones."""

    def __init__(self, ctx: Ctx, clock: FixedClock) -> None:
        self.ctx, self.clock, self.n, self.spend = ctx, clock, 0, 0.10
        self.started = clock.now() - 7200

    def write(self) -> None:
        now = self.clock.now()
        for i in range(2):
            detail = {"checked_at": _iso(now), "runs": self.n, "source": f"https://ci/p{i}"}
            _reading(self.ctx, f"sensor-ci{i}", {"signal": {"state": "ok"}, "detail": detail})
        for i in range(3):
            steady = {"summary": f"pipeline {i}: build, test and lint " * 3}
            _reading(self.ctx, f"sensor-repo{i}", {"signal": {"open": i}, "detail": steady})
        workers = {
            f"w{i}": {
                "started_at": _iso(self.started),
                "idle_s": 5 if i == 0 else 5000,
                "uptime_s": 7200,
                "spend_usd": round(self.spend, 4) if i == 0 else 0.5,
                "uncommitted": self.n % 2 == 1 if i == 0 else False,
                "branch": f"looop/w{i}",
            }
            for i in range(3)
        }
        signal = [{"id": f"w{i}", "state": "running", "exit_code": None} for i in range(3)]
        body = {"signal": signal, "detail": {"workers": workers}}
        _reading(self.ctx, "sys-sessions", body)

    def beat(self) -> None:
        """A decide's journal line, then time passes and the clocks and counters move."""
        with self.ctx.paths.journal.open("a") as f:
            f.write(f"- 2025-06-15 15:{self.n:02} noop: checked the CI, nothing to start\n")
        self.clock.advance(90)
        self.n += 1
        self.spend += 0.013


def test_a_fresh_homes_second_decide_repeats_its_first_through_the_readings(
    ctx: Ctx, clock: FixedClock
) -> None:
    """No record yet says which fields move: a timestamp of now shows as its age and a counter
    moves late from the first prompt, so the second decide breaks the first's bytes only
    after READINGS THAT MOVE (what changed is told under SINCE THEN)."""
    home = _FreshHome(ctx, clock)
    home.write()
    first = _decide(ctx).text
    for _ in range(3):
        home.beat()
        home.write()
        second = _decide(ctx).text
        n = _shared(first, second)
        assert n >= first.index("\n=== RECENT JOURNAL"), second[n - 300 : n + 300]
        assert 1 - _shared(first, second) / len(second) < 0.2
        first = second
    assert "runs=3" in second and "spend_usd=0.139" in second  # their values now, last


def test_what_a_field_looks_like_says_where_the_first_prompt_shows_it(
    ctx: Ctx, clock: FixedClock
) -> None:
    home = _FreshHome(ctx, clock)
    home.write()
    text = _decide(ctx).text
    settled = _between(text, "=== SENSOR READINGS", "=== READINGS THAT MOVE")
    late = _between(text, "=== READINGS THAT MOVE", "=== RECENT JOURNAL")
    last = text[text.index("=== FIELDS THAT CHANGE EVERY BEAT") :]
    # an old timestamp, a name and a steady text stay in the reading's settled line
    assert '"started_at":"' + _iso(clock.now() - 7200) in settled
    assert '"source":"https://ci/p0"' in settled and "pipeline 2" in settled
    # a timestamp of now is its age, never the stamp; an idle worker's spend moves late
    assert _iso(clock.now()) not in text and '"checked_at":"<1m ago"' in late
    assert '"spend_usd":0.5' in late
    # a reading whose clock is fresh (a CI check just now, a worker's output) counts every beat
    assert "sensor-ci0.json: runs=0" in last and "worker w0: spend_usd=0.1" in last
    assert "uncommitted=false" in last


def test_a_first_journal_line_is_told_after_an_empty_journal_not_redrawn(ctx: Ctx) -> None:
    for name in ("sensor-a", "sensor-b"):
        _reading(ctx, name, {"signal": {"n": 1}})
    first = _decide(ctx).text
    empty = "=== RECENT JOURNAL ===\n(empty)\n"
    ctx.paths.journal.write_text("- 2025-06-15 15:00 noop: the first line\n")
    second = _decide(ctx).text
    assert _shared(first, second) >= first.index(empty) + len(empty)  # the drawing stays
    since = _between(second, "=== SINCE THEN", "=== NOW")
    assert "--- journal\n- 2025-06-15 15:00 noop: the first line\n" in since
