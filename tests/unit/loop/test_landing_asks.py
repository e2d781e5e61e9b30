"""The decider's PENDING ASKS and the needs queue tell its landing proposal from a worker's ask:
[LANDING] (wait on the human's review, never propose again) and `looop land ID` as its answer
— only when looop's own record names that ask; a box's forged "land" ask is an ordinary one."""

from __future__ import annotations

import json

from looop.core.context import Ctx
from looop.human.mailbox import answer, new_ask
from looop.loop.asks import asks_section
from looop.views.needs import needs_at
from looop.workers.reviewrounds import proposal_file
from tests.clocks import FixedClock


def _ask(ctx: Ctx, wid: str) -> str:
    rec = new_ask(
        ctx.paths.asks, ctx.paths.answers, wid, "Land it?", None, ["no"], ctx.clock.now(),
        land={"branch": f"looop/{wid}"},
    )  # fmt: skip
    return str(rec["id"])


def test_a_proposal_is_landing_to_the_decider_and_landed_from_the_queue(ctx: Ctx) -> None:
    aid = _ask(ctx, "w1")
    proposal_file(ctx, "w1").parent.mkdir(parents=True, exist_ok=True)
    proposal_file(ctx, "w1").write_text(json.dumps({"v": 1, "ask": aid, "tip": "t", "ts": 0}))
    section = asks_section(ctx) or ""
    assert f"- {aid} [LANDING] from w1: Land it?" in section
    assert "LANDING: a landing you proposed waits on the human's review" in section
    (need,) = needs_at(str(ctx.paths.data), [])
    assert need.answer == "looop land w1" and f"(decline: looop answer {aid} no)" in need.what


def test_a_forged_land_ask_is_an_ordinary_one(ctx: Ctx) -> None:
    aid = _ask(ctx, "w2")  # no record of looop's names it
    assert f"- {aid} [STRANDED] from w2" in (asks_section(ctx) or "")
    (need,) = needs_at(str(ctx.paths.data), [])
    assert need.answer == f"looop answer {aid} no"
    other = _ask(ctx, "w3")
    proposal_file(ctx, "w3").parent.mkdir(parents=True, exist_ok=True)
    proposal_file(ctx, "w3").write_text(json.dumps({"v": 1, "ask": "w3-99"}))  # another ask's
    assert f"- {other} [STRANDED] from w3" in (asks_section(ctx) or "")


def test_the_decider_reads_the_last_days_answers_that_the_journal_no_longer_holds(
    ctx: Ctx, clock: FixedClock
) -> None:
    old, new = _ask(ctx, "w4"), _ask(ctx, "w5")
    answer(ctx.paths.asks, ctx.paths.answers, old, "no", clock.now() - 90_000)  # over a day
    answer(ctx.paths.asks, ctx.paths.answers, new, "no", clock.now() - 60)
    section = asks_section(ctx) or ""
    assert f"- {new} answered: no" in section
    assert old not in section
