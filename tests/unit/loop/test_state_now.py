"""Every face reads the loop as it is now, not as the last beat saw it: `looop status`, the
web's `/api/v1/state` and MCP's `looop://state` (one function, web/reads.state) list a new
ask at once and drop an answered one, and all of them — and `watch` — agree on `paused`."""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

import pytest

from looop.core.context import Ctx
from looop.home import store
from looop.human.mailbox import answer, new_ask
from looop.tui.statusline import status_left
from looop.views.status import gather_status
from looop.views.statustext import print_status
from looop.web import reads


def _faces(ctx: Ctx) -> dict[str, dict[str, Any]]:
    """The state object each face serves: status --json, the web and MCP (both reads.state,
    live workers and every worker), and plain status's own view."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        print_status(gather_status(ctx.paths, ctx.env, ctx.clock), as_json=True)
    return {
        "status --json": json.loads(out.getvalue()),
        "status": dict(gather_status(ctx.paths, ctx.env, ctx.clock, all_workers=False)),
        "web/mcp state": reads.state(ctx),
        "web/mcp state ?all=1": reads.state(ctx, True),
    }


def _ask_ids(st: dict[str, Any]) -> list[str]:
    return sorted(a if isinstance(a, str) else a["id"] for a in st["asks"])


def _snapshot_asks(ctx: Ctx, ids: list[str]) -> None:
    """What the pulse's last beat saw (the sys-asks probe's reading)."""
    ctx.paths.snapshots.mkdir(parents=True, exist_ok=True)
    store.write_json(ctx.paths.snapshots / "sys-asks.json", {"detail": {}, "signal": ids})


def test_a_new_ask_shows_on_every_face_before_any_beat(ctx: Ctx) -> None:
    _snapshot_asks(ctx, [])
    p = ctx.paths
    ask = new_ask(p.asks, p.answers, "w1", "merge it?", None, ["yes", "no"], ctx.clock.now())
    for face, st in _faces(ctx).items():
        assert _ask_ids(st) == [ask["id"]], face


def test_an_answered_ask_leaves_every_face_before_any_beat(ctx: Ctx) -> None:
    p = ctx.paths
    done = new_ask(p.asks, p.answers, "w1", "merge it?", None, [], ctx.clock.now())
    left = new_ask(p.asks, p.answers, "w2", "which db?", None, [], ctx.clock.now())
    _snapshot_asks(ctx, sorted([done["id"], left["id"]]))  # the last beat saw both
    answer(p.asks, p.answers, done["id"], "yes", ctx.clock.now())
    for face, st in _faces(ctx).items():
        assert _ask_ids(st) == [left["id"]], face


def test_plain_status_names_the_asks_as_they_are_now(
    ctx: Ctx, capsys: pytest.CaptureFixture[str]
) -> None:
    p = ctx.paths
    _snapshot_asks(ctx, ["gone-1"])  # answered and removed since the last beat
    ask = new_ask(p.asks, p.answers, "w1", "merge it?", None, [], ctx.clock.now())
    print_status(gather_status(p, ctx.env, ctx.clock), as_json=False)
    out = capsys.readouterr().out
    assert ask["id"] in out and "gone-1" not in out


# --- paused: status, watch and the web say the same --------------------------------------

HISTORIES: dict[str, tuple[list[dict[str, Any]], bool]] = {
    "never started": ([], False),
    "paused (down --keep-workers)": ([{"event": "down", "pulse": True, "kept": ["w1"]}], True),
    "stopped (down)": ([{"event": "down", "pulse": True, "workers": []}], False),
    "paused, then started again": (
        [{"event": "down", "pulse": True, "kept": []}, {"event": "pulse_start"}],
        False,
    ),
}


@pytest.mark.parametrize("history", list(HISTORIES))
def test_status_watch_and_the_web_agree_on_paused(
    ctx: Ctx, capsys: pytest.CaptureFixture[str], history: str
) -> None:
    records, paused = HISTORIES[history]
    for r in records:
        store.append_line(ctx.paths.events, json.dumps({"ts": ctx.clock.now(), **r}))
    for face, st in _faces(ctx).items():
        assert st["paused"] is paused, face
    print_status(gather_status(ctx.paths, ctx.env, ctx.clock), as_json=False)
    pulse_line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("pulse:"))
    assert ("paused" in pulse_line) is paused, pulse_line
    watch = status_left(ctx, None)
    assert ("pulse paused" in watch) is paused, watch
