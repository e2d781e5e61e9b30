"""Parsing a decision: bytes or a decoded object to a validated Decision, one line per refusal
(bad JSON, unknown action, a field of the wrong type, values Python would choke on)."""

from __future__ import annotations

import json
import re
from typing import Any

from looop.act.decision import (
    ACTION_TAGS,
    EVERY_S_BOUNDS,
    IN_S_BOUNDS,
    Action,
    ArchiveGoal,
    Decision,
    DecisionError,
    DropSchedule,
    KillWorker,
    Noop,
    RemoveSensor,
    RestartSession,
    RunShell,
    SendKey,
    SendNotification,
    StartWorker,
    SteerSession,
    WriteGoal,
    WritePlaybook,
    WriteSchedule,
    WriteSensor,
    _not_int,
    _shown,
)
from looop.hot import jsonsafe
from looop.hot.sandboxpolicy import SandboxPolicy, parse_sandbox

_FENCE = re.compile(r"\A```[ \t]*(?:json)?[ \t]*\n(?P<body>.*?)\n?[ \t]*```\Z", re.S | re.I)
_EXPECTED = ", ".join(ACTION_TAGS)
_REFUSED = re.compile(r"holds (-?NaN|-?Infinity)\b|\((\S{1,24})…\)")


def _type_name(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int | float):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    return "an object"


def _bad(tag: str, field: str, want: str) -> DecisionError:
    return DecisionError(f"{tag}: field '{field}' must be {want}")


def _req_str(tag: str, obj: dict[str, Any], field: str) -> str:
    v = obj.get(field)
    if not isinstance(v, str):
        raise _bad(tag, field, "a string")
    return v


def _opt_str(tag: str, obj: dict[str, Any], field: str) -> str | None:
    """Absent and null both mean 'not given'."""
    v = obj.get(field)
    if v is None:
        return None
    if not isinstance(v, str):
        raise _bad(tag, field, "a string")
    return v


def _opt_int(tag: str, obj: dict[str, Any], field: str, bounds: tuple[int, int]) -> int | None:
    v = obj.get(field)
    if v is None:
        return None
    low, high = bounds
    if _not_int(v) or not low <= v <= high:
        raise _bad(tag, field, f"an integer from {low} to {high}")
    assert isinstance(v, int)
    return v


def _opt_usd(tag: str, obj: dict[str, Any], field: str) -> float | None:
    """A USD amount: absent or null is none; the range is the action's to check."""
    v = obj.get(field)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise _bad(tag, field, f"a number of USD, got {_type_name(v)}")
    if isinstance(v, int) and abs(v) > 10**15:  # float() of a huge int would overflow
        raise _bad(tag, field, f"a number of USD, got {_shown(v)}")
    return float(v)


def _opt_policy(tag: str, obj: dict[str, Any]) -> str:
    v = _opt_str(tag, obj, "on_budget")
    return "pause" if v is None else v  # "" is a policy the action refuses, not the default


def _opt_bool(tag: str, obj: dict[str, Any], field: str) -> bool:
    """Absent and null both mean false."""
    v = obj.get(field)
    if v is None:
        return False
    if not isinstance(v, bool):
        raise _bad(tag, field, "true or false")
    return v


def _keys(obj: dict[str, Any]) -> tuple[str, ...]:
    v = obj.get("keys")
    if not isinstance(v, list) or not v or not all(isinstance(k, str) and k for k in v):
        raise _bad("send_key", "keys", "a non-empty list of strings")
    return tuple(v)


def _sandbox(tag: str, obj: dict[str, Any]) -> SandboxPolicy | None:
    v = obj.get("sandbox")
    if v is None:
        return None
    try:
        return parse_sandbox(v, "sandbox")
    except ValueError as e:
        at, expected = str(e).split("|", 1)
        raise _bad(tag, at, expected) from None


def _build(tag: str, o: dict[str, Any]) -> Action:
    s, opt = _req_str, _opt_str
    match tag:
        case "noop":
            return Noop(reason=opt(tag, o, "reason") or "")
        case "run_shell":
            return RunShell(cmd=s(tag, o, "cmd"), reason=opt(tag, o, "reason") or "")
        case "write_goal":
            return WriteGoal(id=s(tag, o, "id"), body=s(tag, o, "body"))
        case "archive_goal":
            return ArchiveGoal(id=s(tag, o, "id"))
        case "write_sensor":
            return WriteSensor(name=s(tag, o, "name"), script=s(tag, o, "script"))
        case "remove_sensor":
            return RemoveSensor(name=s(tag, o, "name"))
        case "write_playbook":
            return WritePlaybook(body=s(tag, o, "body"))
        case "start_worker":
            return StartWorker(
                id=s(tag, o, "id"),
                prompt=s(tag, o, "prompt"),
                runner=opt(tag, o, "runner"),
                command=opt(tag, o, "command"),
                verify=opt(tag, o, "verify"),
                sandbox=_sandbox(tag, o),
                repo=opt(tag, o, "repo"),
                branch=opt(tag, o, "branch"),
                resume=_opt_bool(tag, o, "resume"),
                host=opt(tag, o, "host"),
                budget_usd=_opt_usd(tag, o, "budget_usd"),
                on_budget=_opt_policy(tag, o),
                steerable=_opt_bool(tag, o, "steerable"),
            )
        case "kill_worker":
            return KillWorker(id=s(tag, o, "id"), reason=opt(tag, o, "reason") or "")
        case "steer_session":
            return SteerSession(id=s(tag, o, "id"), input=s(tag, o, "input"))
        case "send_key":
            return SendKey(id=s(tag, o, "id"), keys=_keys(o))
        case "restart_session":
            return RestartSession(id=s(tag, o, "id"))
        case "send_notification":
            return SendNotification(message=s(tag, o, "message"), id=opt(tag, o, "id") or "")
        case "write_schedule":
            return WriteSchedule(
                name=s(tag, o, "name"),
                in_s=_opt_int(tag, o, "in_s", IN_S_BOUNDS),
                every_s=_opt_int(tag, o, "every_s", EVERY_S_BOUNDS),
                cron=opt(tag, o, "cron"),
                tz=opt(tag, o, "tz"),
                note=opt(tag, o, "note") or "",
            )
        case "drop_schedule":
            return DropSchedule(name=s(tag, o, "name"))
    raise AssertionError(tag)


def decision_from_obj(obj: dict[str, Any]) -> Decision:
    """Validate a decoded decision object (unknown extra keys are ignored)."""
    if not isinstance(obj, dict):
        raise DecisionError(
            f'decision must be a JSON object like {{"action": "noop"}}, got {_type_name(obj)}'
        )
    if "action" not in obj:
        raise DecisionError(f'decision has no "action" (expected one of: {_EXPECTED})')
    tag = obj["action"]
    if not isinstance(tag, str) or tag not in ACTION_TAGS:
        raise DecisionError(
            f"decision has unknown action {_shown(tag)} (expected one of: {_EXPECTED})"
        )
    action = _build(tag, obj)
    journal = obj.get("journal")
    if journal is not None and not isinstance(journal, str):
        raise DecisionError(
            f"decision: field 'journal' must be a string, got {_type_name(journal)}"
        )
    raw_nudge = obj.get("next_interval_s")
    # A malformed nudge is only a hint: drop it rather than fail the whole move.
    nudge = raw_nudge if isinstance(raw_nudge, int) and not _not_int(raw_nudge) else None
    if nudge is not None and nudge < 0:
        nudge = None
    return Decision(action=action, journal=journal, next_interval_s=nudge)


def _field_holding(text: str, why: str) -> str | None:
    """The key whose value is the token jsonsafe refused (as its message quotes it)."""
    said = _REFUSED.search(why)
    if said is None:
        return None
    token = re.escape(said.group(1) or said.group(2))
    at = re.search(r'"([A-Za-z_][A-Za-z0-9_]{0,63})"\s*:\s*' + token, text)
    return at.group(1) if at is not None else None


def parse_decision(raw: bytes, max_bytes: int = 262144) -> Decision:
    """Bytes of .decision.json -> a validated Decision; DecisionError with one line otherwise."""
    if len(raw) > max_bytes:
        raise DecisionError(
            f"decision is {len(raw)} bytes, over the {max_bytes}-byte limit; "
            "write one small JSON object"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DecisionError("decision is not valid UTF-8") from None
    text = text.removeprefix("\ufeff").strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group("body").strip()
    if not text:
        raise DecisionError('decision is empty; write one JSON object like {"action": "noop"}')
    try:
        obj = jsonsafe.loads(text, max_depth=MAX_DEPTH, max_int_digits=_MAX_INT_DIGITS, check=False)
    except json.JSONDecodeError as e:
        raise DecisionError(
            f"decision is not valid JSON ({e.msg} at line {e.lineno} column {e.colno}); "
            "write exactly one JSON object, optionally inside one ```json fence"
        ) from None
    except jsonsafe.UnsafeJSON as e:
        # NaN, Infinity and huge numbers are refused before any field is read: name the
        # field that holds the one refused
        field = _field_holding(text, str(e))
        if field is not None:
            raise DecisionError(f"decision: field '{field}' {e}") from None
        raise DecisionError(f"decision {e}") from None
    _check_values(obj)
    return decision_from_obj(obj)


# Valid JSON that Python would choke on later (int() digit limits, inf in arithmetic, text
# that cannot be encoded) is refused before any field is read, with the field named, so the
# model learns why.
MAX_DEPTH = 32
_MAX_INT_DIGITS = 18  # every integer a decision may carry fits in 64 bits


def _check_values(obj: Any) -> None:
    """Every string and key encodes as UTF-8 without NUL, and nesting stays shallow."""
    tag = obj.get("action") if isinstance(obj, dict) else None
    if not isinstance(tag, str) or tag not in ACTION_TAGS:
        tag = "decision"
    try:
        jsonsafe.check_values(obj, MAX_DEPTH, allow_nul=False)
    except jsonsafe.UnsafeJSON as e:
        raise DecisionError(f"{tag}: {e}") from None
