"""Parsing a decision: bytes or a decoded object to a validated Decision, one line per refusal
(bad JSON, unknown action, a field of the wrong type, values Python would choke on)."""

from __future__ import annotations

import re
from typing import Any

from looop.act.actiontable import ACTION_TAGS, action_for
from looop.act.decision import Decision, DecisionError, not_int, shown, type_name
from looop.home import jsonio

_FENCE = re.compile(r"\A```[ \t]*(?:json)?[ \t]*\n(?P<body>.*?)\n?[ \t]*```\Z", re.S | re.I)
_EXPECTED = ", ".join(ACTION_TAGS)
_REFUSED = re.compile(r"holds (-?NaN|-?Infinity)\b|\((\S{1,24})…\)")


def decision_from_obj(obj: dict[str, Any]) -> Decision:
    """Validate a decoded decision object (unknown extra keys are ignored)."""
    if not isinstance(obj, dict):
        raise DecisionError(
            f'decision must be a JSON object like {{"action": "noop"}}, got {type_name(obj)}'
        )
    if "action" not in obj:
        raise DecisionError(f'decision has no "action" (expected one of: {_EXPECTED})')
    tag = obj["action"]
    if not isinstance(tag, str) or tag not in ACTION_TAGS:
        raise DecisionError(
            f"decision has unknown action {shown(tag)} (expected one of: {_EXPECTED})"
        )
    action = action_for(tag).parse(obj)  # its declaration loaded now
    journal = obj.get("journal")
    if journal is not None and not isinstance(journal, str):
        raise DecisionError(f"decision: field 'journal' must be a string, got {type_name(journal)}")
    nudge = obj.get("next_interval_s")
    # A malformed nudge is only a hint: drop it rather than fail the whole move.
    nudge = nudge if isinstance(nudge, int) and not not_int(nudge) and nudge >= 0 else None
    return Decision(action=action, journal=journal, next_interval_s=nudge)


def _field_holding(text: str, why: str) -> str | None:
    """The key whose value is the token jsonio refused (as its message quotes it)."""
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
        obj = jsonio.safe_loads(
            text, max_depth=MAX_DEPTH, max_int_digits=_MAX_INT_DIGITS, check=False, saturate=True
        )
    except jsonio.UnsafeJSON as e:
        # NaN, Infinity and huge numbers are refused before any field is read: name the
        # field that holds the one refused
        field = _field_holding(text, str(e))
        if field is not None:
            raise DecisionError(f"decision: field '{field}' {e}") from None
        raise DecisionError(f"decision {e}") from None
    except ValueError as e:  # json's own error: where the text stops being JSON
        raise DecisionError(
            f"decision is not valid JSON ({jsonio.placed(e)}); "
            "write exactly one JSON object, optionally inside one ```json fence"
        ) from None
    _check_values(obj)
    return decision_from_obj(_held(obj, None))


# Valid JSON that Python would choke on later (int() digit limits, inf in arithmetic, text
# that cannot be encoded) is refused before any field is read, with the field named, so the
# model learns why.
MAX_DEPTH = 32
_MAX_INT_DIGITS = 18  # every integer a decision may carry fits in 64 bits
# where a longer one is held at the largest (a schedule past ten years saturates there,
# human/schedules.FAR_S); anywhere else it is refused
SATURATING = frozenset({"in_s", "every_s"})


def _held(obj: Any, key: str | None) -> Any:
    """`obj` with each too-long integer under a SATURATING key made a plain one at the
    largest; DecisionError naming the field of any other."""
    if isinstance(obj, jsonio.Saturated):
        if key in SATURATING:
            return int(obj)
        raise DecisionError(
            f"decision: field '{jsonio.where([key] if key else [])}' holds an integer of "
            f"{obj.digits} digits "
            f"(at most {_MAX_INT_DIGITS}); write a realistic number"
        )
    if isinstance(obj, dict):
        return {k: _held(v, k) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_held(v, key) for v in obj]
    return obj


def _check_values(obj: Any) -> None:
    """Every string and key encodes as UTF-8 without NUL, and nesting stays shallow."""
    tag = obj.get("action") if isinstance(obj, dict) else None
    if not isinstance(tag, str) or tag not in ACTION_TAGS:
        tag = "decision"
    try:
        jsonio.check_values(obj, MAX_DEPTH, allow_nul=False)
    except jsonio.UnsafeJSON as e:
        raise DecisionError(f"{tag}: {e}") from None
