"""v1.0's PLAYBOOK history cases replayed: nothing is kept before the first PLAYBOOK, an
overwrite keeps the old body in playbook.d/, and versions written in the same second are named
so that they sort in the order written (v1.0: `-0001`… so an unpadded `-10` cannot sort
before `-2`); pruning and `playbook history` go by that order."""

from __future__ import annotations

import os
from dataclasses import replace

from looop.act.executor import execute
from looop.act.parse import decision_from_obj
from looop.act.playbook import versions
from looop.core.context import Ctx
from tests.clocks import FixedClock


def _write(ctx: Ctx, body: str) -> None:
    execute(ctx, ctx.knobs(), decision_from_obj({"action": "write_playbook", "body": body}))


def test_the_first_write_keeps_nothing_and_an_overwrite_keeps_the_old_body(ctx: Ctx) -> None:
    hist = ctx.paths.playbook_history
    _write(ctx, "v1 rules")
    assert not hist.exists() or os.listdir(hist) == []
    _write(ctx, "v2 rules")
    assert [p.read_text() for p in versions(hist)] == ["v1 rules\n"]
    assert ctx.paths.playbook.read_text() == "v2 rules\n"


def test_versions_of_one_second_sort_in_the_order_written(ctx: Ctx, clock: FixedClock) -> None:
    keep_all = replace(ctx, env={**ctx.env, "LOOOP_PLAYBOOK_KEEP": "0"})
    for n in range(1, 14):  # 12 versions kept, all in the same second
        _write(keep_all, f"v{n}")
    hist = ctx.paths.playbook_history
    written = [f"v{n}\n" for n in range(1, 13)]
    assert [(hist / f).read_text() for f in sorted(os.listdir(hist))] == written  # plain `ls`
    assert [p.read_text() for p in versions(hist)] == written
    clock.advance(1)  # the next second starts again with a bare stamp, after all of them
    _write(keep_all, "v14")
    names = sorted(os.listdir(hist))
    assert (hist / names[-1]).read_text() == "v13\n" and "~" not in names[-1]


def test_pruning_keeps_the_newest_of_one_second(ctx: Ctx) -> None:
    keep5 = replace(ctx, env={**ctx.env, "LOOOP_PLAYBOOK_KEEP": "5"})
    for n in range(1, 14):
        _write(keep5, f"v{n}")
    kept = [p.read_text() for p in versions(ctx.paths.playbook_history)]
    assert kept == [f"v{n}\n" for n in range(8, 13)]


def test_names_of_the_earlier_spelling_still_sort_by_count(ctx: Ctx) -> None:
    """Versions an earlier looop named `STAMP-N.md` keep their order beside the new ones."""
    hist = ctx.paths.playbook_history
    hist.mkdir(parents=True)
    stamp = "20250614-100000"
    for name, body in [(f"{stamp}-10.md", "ten"), (f"{stamp}.md", "one"), (f"{stamp}-2.md", "two")]:
        (hist / name).write_text(body)
    assert [p.read_text() for p in versions(hist)] == ["one", "two", "ten"]
