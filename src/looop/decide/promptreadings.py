"""How the prompt shows the sensor readings: each reading one item, except the system readings
that list many things at once (sys-sessions' workers, sys-goals' goals), which show one item
per worker or goal, so one worker's news moves one short item and not thirty workers' worth.
The ages those two carry grow every beat and are listed apart (AGES, in the volatile tail)."""

from __future__ import annotations

from typing import Any

from looop.core.readings import AGE_KEYS, Reading, split_ages
from looop.home import jsonio

# the system readings shown one item per entry: reading name -> the label of one entry
EACH = {"sys-sessions": "worker", "sys-goals": "goal"}


def _dump(value: Any) -> str:
    return jsonio.canonical(value) + "\n"


def reading_ages(reading: Reading) -> tuple[Any, dict[str, dict[str, Any]]]:
    """A system reading's value without its ages (None when it is not a JSON reading of
    AGE_KEYS), and the ages by item."""
    if reading.name not in AGE_KEYS or not reading.is_json:
        return None, {}
    return split_ages(reading)


def reading_items(reading: Reading) -> list[tuple[str, str]]:
    """(label, text) of each item one reading shows: itself, or for sys-sessions and sys-goals
    the rest of the reading and then one item per worker or goal (its signal entry and its
    detail, without ages)."""
    file_name, name, raw = reading.file_name, reading.name, reading.text
    kept, _ = reading_ages(reading)
    if kept is None:
        return [(file_name, raw)]
    detail = kept.get("detail") if isinstance(kept, dict) else None
    spec = AGE_KEYS[name][0]
    entries = detail.get(spec) if isinstance(detail, dict) else None
    if not isinstance(entries, dict):
        return [(file_name, raw)]
    signal = kept.get("signal")
    by_id: dict[str, Any] = {}
    if isinstance(signal, list):
        for entry in signal:
            if isinstance(entry, dict) and entry.get("id") in entries:
                by_id[str(entry["id"])] = entry
        signal = [e for e in signal if not (isinstance(e, dict) and str(e.get("id")) in by_id)]
    rest = {**kept, "detail": {k: v for k, v in detail.items() if k != spec}}  # type: ignore[union-attr]
    if isinstance(signal, list):
        rest["signal"] = signal
    items = [(file_name, _dump(rest))]
    for item_id, body in entries.items():
        one = {"detail": body, **({"signal": by_id[item_id]} if item_id in by_id else {})}
        items.append((f"{file_name} {EACH.get(name, 'item')} {item_id}", _dump(one)))
    return items


def ages_lines(readings: tuple[Reading, ...]) -> list[tuple[str, str]]:
    """(key, line) of each item's ages, as of this beat: volatile, so listed at the end and not
    in SENSOR READINGS (whose bytes then stay the same while nothing changed)."""
    lines: list[tuple[str, str]] = []
    held = {r.name: r for r in readings}
    for name, label in EACH.items():
        got = held.get(name)
        if got is None or not got.text:
            continue
        for item, ages in sorted(reading_ages(got)[1].items()):
            shown = " ".join(f"{k}={v}" for k, v in sorted(ages.items()) if v is not None)
            if shown:
                lines.append((f"{label} {item}", f"- {label} {item}: {shown}"))
    return lines
