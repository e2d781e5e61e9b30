from __future__ import annotations

import json
from typing import Any

import pytest

from looop.act.actiontable import ACTION_TAGS
from looop.act.decision import Decision, DecisionError, check_id
from looop.act.moves.files import ArchiveGoal, WriteGoal, WritePlaybook, WriteSensor
from looop.act.moves.kill import KillWorker
from looop.act.moves.notes import DropSchedule, Noop, SendNotification, WriteSchedule
from looop.act.moves.runshell import RunShell
from looop.act.moves.sessions import RestartSession, SendKey, SteerSession
from looop.act.moves.workers import StartWorker
from looop.act.parse import decision_from_obj, parse_decision


def parse(obj: Any) -> Decision:
    return parse_decision(json.dumps(obj).encode())


def test_noop_with_journal_and_no_nudge() -> None:
    d = parse({"action": "noop", "reason": "all quiet", "journal": "nothing to do"})
    assert d == Decision(Noop(reason="all quiet"), journal="nothing to do", next_interval_s=None)
    assert d.action.kind == "noop"
    assert d.action.summary() == "noop · all quiet"
    assert Noop().summary() == "noop"


def test_start_worker_lifts_metadata() -> None:
    d = parse(
        {
            "action": "start_worker",
            "id": "triage",
            "prompt": "sort the inbox",
            "runner": "pi",
            "verify": "test -f done",
            "journal": "delegating",
            "next_interval_s": 15,
        }
    )
    assert d.action == StartWorker(
        id="triage", prompt="sort the inbox", runner="pi", verify="test -f done"
    )
    assert d.journal == "delegating"
    assert d.next_interval_s == 15
    assert d.action.summary() == "start-worker triage"


def test_run_shell_escape_hatch() -> None:
    d = parse({"action": "run_shell", "cmd": "git status", "reason": "check tree"})
    assert d.action == RunShell(cmd="git status", reason="check tree")
    assert d.action.kind == "shell"
    assert d.action.summary() == "run-shell · check tree"
    assert RunShell(cmd="ls\n-la").summary() == "run-shell · ls -la"


@pytest.mark.parametrize(
    ("obj", "want", "kind", "summary"),
    [
        ({"action": "write_goal", "id": "ship", "body": "b"}, WriteGoal("ship", "b"), "goal",
         "write-goal ship"),
        ({"action": "archive_goal", "id": "ship", "reason": "done"}, ArchiveGoal("ship", "done"),
         "archive", "archive-goal ship (done)"),
        ({"action": "write_sensor", "name": "ci", "script": "echo {}"},
         WriteSensor("ci", "echo {}"), "sensor", "write-sensor ci"),
        ({"action": "write_playbook", "body": "# P"}, WritePlaybook("# P"), "playbook",
         "write-playbook"),
        ({"action": "kill_worker", "id": "w1", "reason": "stuck"}, KillWorker("w1", "stuck"),
         "kill", "kill-worker w1 · stuck"),
        ({"action": "steer_session", "id": "looop-w1", "input": "go on"},
         SteerSession("w1", "go on"), "steer", "steer w1"),
        ({"action": "send_key", "id": "w1", "keys": ["C-c", "Enter"]},
         SendKey("w1", ("C-c", "Enter")), "key", "key w1 · C-c Enter"),
        ({"action": "restart_session", "id": "w1"}, RestartSession("w1"), "restart",
         "restart w1"),
        ({"action": "send_notification", "message": "look"}, SendNotification("look", ""),
         "notify", "notify · look"),
        ({"action": "write_schedule", "name": "daily", "cron": "0 9 * * *", "tz": "UTC"},
         WriteSchedule("daily", cron="0 9 * * *", tz="UTC"), "schedule",
         "write-schedule daily · cron '0 9 * * *' UTC"),
        ({"action": "write_schedule", "name": "soon", "in_s": 1},
         WriteSchedule("soon", in_s=1), "schedule", "write-schedule soon · in 1s"),
        ({"action": "write_schedule", "name": "tick", "every_s": 60, "note": "n"},
         WriteSchedule("tick", every_s=60, note="n"), "schedule",
         "write-schedule tick · every 60s"),
        ({"action": "drop_schedule", "name": "daily"}, DropSchedule("daily"), "drop-schedule",
         "drop-schedule daily"),
    ],
)  # fmt: skip
def test_every_other_variant(obj: dict[str, Any], want: Any, kind: str, summary: str) -> None:
    d = parse(obj)
    assert d.action == want
    assert d.action.kind == kind
    assert d.action.summary() == summary


def test_every_tag_is_parseable_and_has_a_distinct_kind() -> None:
    assert len(ACTION_TAGS) == 16
    assert len(set(ACTION_TAGS)) == 16


def test_unknown_extra_keys_ignored() -> None:
    d = parse({"action": "noop", "mood": "great", "confidence": 0.9})
    assert d.action == Noop()


@pytest.mark.parametrize(
    "text",
    [
        '```json\n{"action": "noop", "reason": "x"}\n```',
        '```\n{"action": "noop", "reason": "x"}\n```',
        '  \n```JSON\n{"action": "noop", "reason": "x"}\n```\n\n',
        '{"action": "noop", "reason": "x"}',
    ],
)
def test_one_code_fence_is_tolerated(text: str) -> None:
    assert parse_decision(text.encode()).action == Noop(reason="x")


@pytest.mark.parametrize(
    "text",
    [
        'Here you go:\n```json\n{"action": "noop"}\n```',
        '```json\n```json\n{"action": "noop"}\n```\n```',
        '```python\n{"action": "noop"}\n```',
        '{"action": "noop"} and some prose',
        '{"action": "noop"}\n{"action": "noop"}',
        "not json at all",
        "",
        "   ",
        "[[[[[[[[[[" * 20000,
    ],
)
def test_garbage_and_prose_are_rejected_on_one_line(text: str) -> None:
    with pytest.raises(DecisionError) as e:
        parse_decision(text.encode())
    assert "\n" not in str(e.value)
    assert "decision" in str(e.value)


def test_not_an_object() -> None:
    with pytest.raises(DecisionError, match="must be a JSON object"):
        parse_decision(b'["noop"]')


def test_not_utf8() -> None:
    with pytest.raises(DecisionError, match=r"^decision is not valid UTF-8$"):
        parse_decision(b'{"action": "noop", "reason": "\xff\xfe"}')


def test_oversized_names_size_and_limit() -> None:
    raw = json.dumps({"action": "noop", "reason": "x" * 300}).encode()
    with pytest.raises(DecisionError) as e:
        parse_decision(raw, max_bytes=100)
    assert str(len(raw)) in str(e.value)
    assert "100" in str(e.value)
    assert parse_decision(raw, max_bytes=len(raw)).action == Noop(reason="x" * 300)


def test_missing_action_lists_valid_ones() -> None:
    with pytest.raises(DecisionError) as e:
        parse({"reason": "x"})
    msg = str(e.value)
    assert msg.startswith('decision has no "action" (expected one of: ')
    for tag in ACTION_TAGS:
        assert tag in msg


@pytest.mark.parametrize("tag", ["launch_rocket", 7, None, ["noop"]])
def test_unknown_action_names_it(tag: Any) -> None:
    with pytest.raises(DecisionError) as e:
        parse({"action": tag})
    msg = str(e.value)
    assert json.dumps(tag) in msg
    assert "write_goal" in msg and "send_key" in msg


@pytest.mark.parametrize(
    ("obj", "msg"),
    [
        ({"action": "run_shell"}, "run_shell: field 'cmd' must be a string"),
        ({"action": "run_shell", "cmd": 5}, "run_shell: field 'cmd' must be a string"),
        ({"action": "run_shell", "cmd": "  "}, "run_shell: field 'cmd' must be a non-empty string"),
        ({"action": "run_shell", "cmd": "ls\u0000x"},
         "run_shell: field 'cmd' must not contain NUL characters"),
        ({"action": "run_shell", "cmd": "ls", "reason": 3},
         "run_shell: field 'reason' must be a string"),
        ({"action": "write_goal", "id": "x"}, "write_goal: field 'body' must be a string"),
        ({"action": "write_goal", "body": "x"}, "write_goal: field 'id' must be a string"),
        ({"action": "write_sensor", "name": "s", "script": ["echo"]},
         "write_sensor: field 'script' must be a string"),
        ({"action": "write_playbook", "body": None},
         "write_playbook: field 'body' must be a string"),
        ({"action": "write_playbook", "body": " \n"},
         "write_playbook: field 'body' must be a non-empty string"),
        ({"action": "start_worker", "id": "w", "prompt": "p", "runner": 1},
         "start_worker: field 'runner' must be a string"),
        ({"action": "steer_session", "id": "w"}, "steer_session: field 'input' must be a string"),
        ({"action": "send_key", "id": "w", "keys": "Enter"},
         "send_key: field 'keys' must be a non-empty list of strings"),
        ({"action": "send_key", "id": "w", "keys": []},
         "send_key: field 'keys' must be a non-empty list of strings"),
        ({"action": "send_key", "id": "w", "keys": ["Enter", 3]},
         "send_key: field 'keys' must be a non-empty list of strings"),
        # two bad fields: the one read first is named, as the fields are listed
        ({"action": "send_key", "id": 5, "keys": "Enter"}, "send_key: field 'id' must be a string"),
        ({"action": "start_worker", "prompt": "p", "on_budget": 1},
         "start_worker: field 'id' must be a string"),
        ({"action": "send_notification"}, "send_notification: field 'message' must be a string"),
        ({"action": "write_schedule", "name": "s"},
         "write_schedule: give exactly one of 'in_s', 'every_s' or 'cron'"),
        ({"action": "write_schedule", "name": "s", "in_s": 5, "cron": "* * * * *"},
         "write_schedule: give exactly one of 'in_s', 'every_s' or 'cron'"),
        ({"action": "write_schedule", "name": "s", "in_s": 0},
         "write_schedule: field 'in_s' must be an integer from 1 to"),
        ({"action": "write_schedule", "name": "s", "in_s": 1.5},
         "write_schedule: field 'in_s' must be an integer from 1 to"),
        ({"action": "write_schedule", "name": "s", "in_s": True},
         "write_schedule: field 'in_s' must be an integer from 1 to"),
        ({"action": "write_schedule", "name": "s", "every_s": 59},
         "write_schedule: field 'every_s' must be an integer from 60 to"),
        ({"action": "write_schedule", "name": "s", "cron": 5},
         "write_schedule: field 'cron' must be a string"),
        ({"action": "noop", "journal": 5}, "decision: field 'journal' must be a string"),
        ({"action": "noop", "journal": ["a"]}, "decision: field 'journal' must be a string"),
    ],
)  # fmt: skip
def test_wrong_or_missing_fields(obj: dict[str, Any], msg: str) -> None:
    with pytest.raises(DecisionError) as e:
        parse(obj)
    assert str(e.value).startswith(msg)
    assert "\n" not in str(e.value)


def test_optional_nulls_mean_absent() -> None:
    d = parse({"action": "noop", "reason": None, "journal": None})
    assert d == Decision(Noop(), None, None)


@pytest.mark.parametrize(
    ("nudge", "want"),
    [(30, 30), (0, 0), (-5, None), (2.5, None), (30.0, None), ("30", None), (True, None),
     (None, None), ([30], None)],
)  # fmt: skip
def test_nudge_variants(nudge: Any, want: int | None) -> None:
    d = parse({"action": "noop", "next_interval_s": nudge})
    assert d.next_interval_s == want
    assert d.action == Noop()


@pytest.mark.parametrize("bad", ["", "..", "a/b", ".hidden", "a\\b", "x" * 65, "a..b", "é", "a b"])
def test_check_id_rejects(bad: str) -> None:
    with pytest.raises(DecisionError) as e:
        check_id("goal", bad)
    msg = str(e.value)
    assert msg.startswith("invalid goal id ")
    assert "use 1-64 letters, digits, '.', '_' or '-', not starting with '.'" in msg
    assert "\n" not in msg


def test_check_id_accepts_and_shows_values_safely() -> None:
    assert check_id("goal", "ok-1.b_2") == "ok-1.b_2"
    assert check_id("goal", "x" * 64) == "x" * 64
    assert check_id("sensor", "_private") == "_private"
    with pytest.raises(DecisionError, match=r'^invalid sensor id "\.\./etc": '):
        check_id("sensor", "../etc")
    with pytest.raises(DecisionError) as e:
        check_id("goal", "a\nb" + "y" * 500)
    assert "\n" not in str(e.value)
    assert len(str(e.value)) < 200


@pytest.mark.parametrize(
    ("obj", "kind"),
    [
        ({"action": "write_goal", "id": "../x", "body": "b"}, "goal"),
        ({"action": "archive_goal", "id": ".git", "reason": "done"}, "goal"),
        ({"action": "write_sensor", "name": "a/b", "script": "s"}, "sensor"),
        ({"action": "start_worker", "id": "a b", "prompt": "p"}, "worker"),
        ({"action": "write_schedule", "name": "..", "in_s": 5}, "schedule"),
        ({"action": "drop_schedule", "name": ""}, "schedule"),
    ],
)
def test_parsed_ids_are_checked(obj: dict[str, Any], kind: str) -> None:
    with pytest.raises(DecisionError, match=f"^invalid {kind} id "):
        parse(obj)


@pytest.mark.parametrize("tag", ["steer_session", "send_key", "restart_session", "kill_worker"])
def test_worker_target_strips_prefix_and_refuses_pulse(tag: str) -> None:
    extra: dict[str, Any] = {"input": "x", "keys": ["Enter"]}
    d = parse({"action": tag, "id": "looop-triage", **extra})
    assert getattr(d.action, "id") == "triage"  # noqa: B009
    for pulse in ("pulse", "looop-pulse"):
        with pytest.raises(DecisionError, match="control loop, not a worker"):
            parse({"action": tag, "id": pulse, **extra})
    for empty in ("", "looop-"):
        with pytest.raises(DecisionError, match="invalid worker id"):
            parse({"action": tag, "id": empty, **extra})


def test_start_worker_refuses_pulse() -> None:
    with pytest.raises(DecisionError, match="control loop"):
        StartWorker(id="pulse", prompt="p")


def test_goal_of_maps_only_targeting_actions() -> None:
    assert StartWorker("ship", "p").goal() == "ship"
    assert WriteGoal("ship", "b").goal() == "ship"
    assert ArchiveGoal("ship", "done").goal() == "ship"
    assert SteerSession("looop-triage", "x").goal() == "triage"
    assert SendKey("looop-triage", ("Enter",)).goal() == "triage"
    assert Noop().goal() is None
    assert SendNotification("hi", "ship").goal() is None
    assert RunShell("ls").goal() is None


def test_decision_from_obj_is_the_same_validator() -> None:
    d = decision_from_obj({"action": "write_goal", "id": "g", "body": "b", "journal": "j"})
    assert d == Decision(WriteGoal("g", "b"), "j", None)
    with pytest.raises(DecisionError, match="must be a JSON object"):
        decision_from_obj([1])  # type: ignore[arg-type]
