"""The ages in the system readings' detail (v1.0's names) and how the prompt keeps them out of
its stable prefix: an age grows every beat, so SENSOR READINGS shows sys-sessions and sys-goals
without them and the prompt's volatile tail lists them (decide/prompt.py)."""

from __future__ import annotations

from typing import Any

# reading name -> (the detail map holding one object per item, the age keys in each object)
AGE_KEYS: dict[str, tuple[str, tuple[str, ...]]] = {
    "sys-sessions": ("workers", ("idle_s", "uptime_s", "ask_age_s")),
    "sys-goals": ("goals", ("age_s",)),
}


def split_ages(name: str, value: Any) -> tuple[Any, dict[str, dict[str, Any]]]:
    """(the reading without its ages, item id -> {age key: value}) for the readings in
    AGE_KEYS; any other reading, or one not shaped as the probe writes it, comes back as is."""
    spec = AGE_KEYS.get(name)
    if spec is None or not isinstance(value, dict):
        return value, {}
    detail = value.get("detail")
    items = detail.get(spec[0]) if isinstance(detail, dict) else None
    if not isinstance(items, dict):
        return value, {}
    keys = spec[1]
    ages: dict[str, dict[str, Any]] = {}
    kept: dict[str, Any] = {}
    for item_id, obj in items.items():
        if not isinstance(obj, dict):
            kept[item_id] = obj
            continue
        ages[item_id] = {k: obj[k] for k in keys if k in obj}
        kept[item_id] = {k: v for k, v in obj.items() if k not in keys}
    assert isinstance(detail, dict)
    return {**value, "detail": {**detail, spec[0]: kept}}, ages
