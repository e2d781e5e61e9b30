"""Each reading split by how often its fields change, so one timestamp or counter in a detail
never moves the bytes of the rest of the reading (issue 54).

A JSON reading's fields are its top-level keys, and each key of its `detail`. Its `signal` is
what wakes the loop, its coarse `age` grows and a worker's `news` is another reading's signal
(decide/promptreadings), so they change by design: they are always shown late (READINGS THAT
MOVE). Any other field that changed between two prompts has moved, and stays moving while the
reading is shown: the reading's settled fields keep their place in SENSOR READINGS, its moving
ones join its signal late, where a change costs the provider's cache only that short item. A
reading that is not a JSON object is one whole: it moves as one item."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from looop.decide.order import Record, digest
from looop.home import jsonio

Path = tuple[str, ...]  # ("signal",) or ("detail", "branch")
# the signal, the coarse ages and a worker's news (decide/promptreadings): always late
LATE = frozenset({'["signal"]', '["age"]', '["news"]'})


@dataclass(frozen=True)
class Split:
    settled: str | None  # the reading without its signal and moving fields (None: nothing left)
    late: str | None  # its signal, ages and moving fields, as one JSON object (None: none)
    digests: dict[str, str]  # each field's digest, for the next prompt's record
    moved: frozenset[str]  # the fields that move, for the next prompt's record


def _dump(value: Any) -> str:
    return jsonio.canonical(value) + "\n"


def fields_of(text: str) -> dict[str, tuple[Path, Any]] | None:
    """The reading's fields by name (the JSON of its path), or None if it is not an object."""
    try:
        value = jsonio.loads(text)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    out: dict[str, tuple[Path, Any]] = {}
    for key, v in value.items():
        if key == "detail" and isinstance(v, dict) and v:
            for sub, sv in v.items():
                out[jsonio.dumps(["detail", sub])] = (("detail", sub), sv)
        else:
            out[jsonio.dumps([key])] = ((key,), v)
    return out


def _rebuild(chosen: list[tuple[Path, Any]]) -> str:
    obj: dict[str, Any] = {}
    for path, v in chosen:
        if len(path) == 1:
            obj[path[0]] = v
        else:
            obj.setdefault(path[0], {})[path[1]] = v
    return _dump(obj)


def split(key: str, text: str, record: Record, moves: frozenset[str] = frozenset()) -> Split:
    """`text` (the item `key`'s) split into its settled and moving fields, by the record of
    the last prompt: a field moves once its value differs from the one shown there; the
    detail keys in `moves` move from the start."""
    fields = fields_of(text)
    if fields is None:
        return Split(text, None, {}, frozenset())
    late = [fields.pop(name) for name in sorted(LATE & fields.keys())]
    born = {(k,) for k in moves}
    digests = {name: digest(_dump(v)) for name, (_, v) in fields.items()}
    was, before = record.moving.get(key, frozenset()), record.fields.get(key)
    moved = frozenset(
        name
        for name in fields
        if name in was
        or fields[name][0][1:] in born
        or (before is not None and before.get(name) != digests[name])
    )
    settled = [fields[n] for n in fields if n not in moved]
    late += [fields[n] for n in fields if n in moved]
    return Split(
        _rebuild(settled) if settled else None,
        _rebuild(late) if late else None,
        digests,
        moved,
    )
