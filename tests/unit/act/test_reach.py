"""act/reach.py's rules without a process: which deciders are boxed, how a session's walls
and a human's opt-in are read from its start record (fail closed), what typed text and keys a
decision may send, and the start record's `steerable` field read strictly."""

from __future__ import annotations

import json
from typing import Any

import pytest

from looop.act import reach
from looop.act.executor import execute
from looop.act.outcome import ExecError
from looop.act.parse import decision_from_obj
from looop.core.context import Ctx
from looop.home.config import parse_config
from looop.home.errors import LooopError
from looop.home.sandboxpolicy import OFF, ON
from looop.workers.startrecord import Record, read_record, record_path, write_record

RUNNER = {"tick": "true", "worker": "cat {{prompt_file}}"}


def _cfg(**top: Any) -> Any:
    runner = dict(RUNNER, **top.pop("runner", {}))
    return parse_config({"default": "r", "runners": {"r": runner}, **top}, "config.json")


@pytest.mark.parametrize(
    ("top", "boxed"),
    [
        ({}, False),
        ({"sandbox": "on"}, True),  # the tick runner's box, as its workers'
        ({"runner": {"sandbox": "on"}}, True),
        ({"sandbox": "on", "runner": {"sandbox": "off"}}, False),
        ({"shell_policy": {"mode": "tripwire", "sandbox": "on"}}, True),
        ({"shell_policy": "off"}, False),
    ],
)
def test_which_deciders_are_boxed(top: dict[str, Any], boxed: bool) -> None:
    assert reach.decider_boxed(_cfg(**top)) is boxed


def _record(ctx: Ctx, wid: str, sandboxed: bool, steerable: bool = False) -> None:
    pol = ON if sandboxed else OFF
    rec = Record(wid, "r", None, None, "/w", pol, "never", 1.0, steerable=steerable)
    write_record(ctx, rec)
    (ctx.paths.sessions / wid).mkdir(parents=True, exist_ok=True)


def test_a_sessions_walls_come_from_its_start_record_and_fail_closed(ctx: Ctx) -> None:
    _record(ctx, "boxed", True)
    _record(ctx, "open", False)
    _record(ctx, "opted", False, steerable=True)
    assert reach.session_reach(ctx, "boxed", False) == reach.Reach(True, False, "/w")
    assert reach.session_reach(ctx, "open", False) == reach.Reach(False, False, "/w")
    assert reach.session_reach(ctx, "opted", False) == reach.Reach(False, True, "/w")
    assert reach.session_reach(ctx, "nosuch", False) is None  # the move fails as ever
    (ctx.paths.sessions / "norecord").mkdir(parents=True)
    assert reach.session_reach(ctx, "norecord", False) == reach.Reach(False, False, None)
    record_path(ctx, "boxed").write_text('{"v": 1, "id": "boxed", "sandbox": "on"}')
    assert reach.session_reach(ctx, "boxed", False) == reach.Reach(False, False, None)
    assert reach.session_reach(ctx, "boxed", True) == reach.Reach(False, False, None)  # away


def test_a_boxed_decider_is_refused_an_open_session_in_one_line(ctx: Ctx) -> None:
    boxed = _cfg(sandbox="on")
    _record(ctx, "open", False)
    _record(ctx, "inbox", True)
    _record(ctx, "opted", False, steerable=True)
    with pytest.raises(ExecError) as e:
        reach.check_reach(ctx, boxed, "send_key", "open", False)
    assert str(e.value).startswith("send_key refused: worker open runs unsandboxed")
    assert "--steerable" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ExecError, match="runs on another host"):
        reach.check_reach(ctx, boxed, "steer_session", "far", True)
    assert reach.check_reach(ctx, boxed, "send_key", "inbox", False) is not None
    assert reach.check_reach(ctx, boxed, "send_key", "opted", False) is not None
    assert reach.check_reach(ctx, _cfg(), "send_key", "open", False) is not None


def test_an_unreadable_config_refuses_the_move(ctx: Ctx) -> None:
    ctx.paths.config.write_text("{not json")
    _record(ctx, "open", False)
    with pytest.raises(ExecError, match=r"^restart_session not run"):
        reach.check_reach(ctx, None, "restart_session", "open", False)


@pytest.mark.parametrize(
    "text",
    [
        "Run the tests before pushing.",
        "Don't push yet; ask first.",
        "Great! Now write the report.",
        "a = (b != c)",
        "y",
    ],
)
def test_plain_steering_text_passes(text: str) -> None:
    got = reach.Reach(False, False, None)
    assert reach.typed_text("steer_session", text) == [text]
    reach.check_recall("steer_session", text, got)


def test_a_leading_bang_is_read_without_it_too() -> None:
    assert reach.typed_text("s", "!rm -rf ~\r ls") == ["!rm -rf ~\n ls", "rm -rf ~\n ls"]


@pytest.mark.parametrize("text", ["a\x15b", "x\x08", "\x1b[A", "a\tb", "\x7f", "\x9b"])
def test_line_editing_characters_are_refused(text: str) -> None:
    with pytest.raises(ExecError, match="control character"):
        reach.typed_text("steer_session", text)


@pytest.mark.parametrize("text", ["!!", "echo !-2", "!rm", "ok\n^a^b", "fc -s", "  fc"])
def test_history_recall_is_refused_only_where_no_sandbox_holds(text: str) -> None:
    with pytest.raises(ExecError, match="history"):
        reach.check_recall("steer_session", text, reach.Reach(False, True, None))
    reach.check_recall("steer_session", text, reach.Reach(True, False, None))


@pytest.mark.parametrize("keys", [("Up",), ("C-p", "Enter"), ("PgUp",), ("C-y",), ("^R",)])
def test_recall_keys_are_refused_only_where_no_sandbox_holds(keys: tuple[str, ...]) -> None:
    with pytest.raises(ExecError, match="history"):
        reach.check_keys("send_key", "w", keys, reach.Reach(False, True, None))
    reach.check_keys("send_key", "w", keys, reach.Reach(True, False, None))


def test_keys_that_recall_nothing_pass() -> None:
    keys = ("C-c", "Down", "Enter", "Esc", "Tab", "Left", "nosuchkey")
    reach.check_keys("send_key", "w", keys, reach.Reach(False, True, None))


def test_the_record_reads_steerable_strictly(ctx: Ctx) -> None:
    _record(ctx, "w", False, steerable=True)
    rec = read_record(ctx, "w")
    assert rec is not None and rec.steerable
    raw = json.loads(record_path(ctx, "w").read_text())
    del raw["steerable"]  # a record from before the field: not opted in
    record_path(ctx, "w").write_text(json.dumps(raw))
    rec = read_record(ctx, "w")
    assert rec is not None and not rec.steerable
    raw["steerable"] = "yes"
    record_path(ctx, "w").write_text(json.dumps(raw))
    with pytest.raises(LooopError, match="field 'steerable' must be true or false"):
        read_record(ctx, "w")


def test_a_decision_is_refused_before_the_session_is_asked(ctx: Ctx) -> None:
    ctx.paths.config.write_text(json.dumps({"default": "r", "runners": {"r": RUNNER},
                                            "sandbox": "on"}))  # fmt: skip
    _record(ctx, "w1", False)
    obj = {"action": "steer_session", "id": "w1", "input": "x"}
    with pytest.raises(ExecError, match=r"^steer_session refused: worker w1 runs unsandboxed"):
        execute(ctx, ctx.knobs(), decision_from_obj(obj))
    assert not ctx.paths.journal.exists()
