"""A sensor's or probe's output as the house carries it (`Reading`) and the world of one beat
(`Snapshot`: every reading by name, with the world hash). Built once where the output is parsed
(sense/), then handed to the beat, the prompt and the faces instead of a dict each reads its
own way. The snapshot file's bytes stay the published form: `to_json` gives them back as
they were, `from_json` reads them. In core, not home: dataclasses would cost a hot verb more
than its whole budget (home/status reads its one signal itself)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from looop.home import jsonio, store
from looop.home.hashing import wake_signal

MAX_INT_DIGITS = 4000  # as the world hash reads a snapshot (home/worldhash)
SNAPSHOT_MAX = 16 * 1024 * 1024  # a reader's bound; a sensor's own cap is far below it

# the shapes sense/sensors writes for a run that failed: signal.error says which
FAILURE_ERRORS = ("oversize", "not-json")

# reading name -> (the detail map holding one object per item, the age keys in each object)
AGE_KEYS: dict[str, tuple[str, tuple[str, ...]]] = {
    "sys-sessions": ("workers", ("idle_s", "uptime_s", "ask_age_s")),
    "sys-goals": ("goals", ("age_s",)),
}


@dataclass(frozen=True)
class Reading:
    """One sensor's or probe's output this beat, and how its run went."""

    name: str  # snapshot basename: sensor-<stem> or sys-<probe>
    value: Any = None  # the whole output as JSON (None as well when it is not JSON)
    is_json: bool = False  # the snapshot's bytes parsed as strict JSON
    ok: bool = True  # the run went well (a failed one's snapshot says why)
    secs: float = 0.0
    cached: bool = False  # kept from an earlier beat by `# looop:interval=N`
    interval: int | None = None  # a sensor's `# looop:interval=N` (None: runs every beat)
    error: str | None = None  # one-line reason when not ok
    unrecorded: bool = False  # the snapshot could not be written: the world on disk is stale
    # the snapshot's bytes as this beat left them in place (None: not known or unreadable)
    body: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_json(cls, name: str, body: bytes | None, **run: Any) -> Reading:
        """A reading from its snapshot's bytes: strict JSON, or kept as bytes when not."""
        if body is None:
            return cls(name, body=None, **run)
        try:
            value = jsonio.safe_loads(body.decode("utf-8"), max_int_digits=MAX_INT_DIGITS)
        except ValueError:  # not UTF-8, not JSON, or JSON looop will not carry (NaN, …)
            return cls(name, body=body, **run)
        return cls(name, value, True, body=body, **run)

    @classmethod
    def of(cls, name: str, value: Any, **run: Any) -> Reading:
        """A reading from a value (a probe's, a failure's): its bytes are the canonical line.
        A value JSON cannot carry (NaN) is a ValueError."""
        text = jsonio.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
        body = (text + "\n").encode()
        return cls(name, value, True, body=body, **run)

    def to_json(self) -> bytes | None:
        """The snapshot file's bytes, as published (None: not known)."""
        return self.body

    @property
    def file_name(self) -> str:
        return f"{self.name}.json"

    @property
    def signal(self) -> Any:
        """What wakes the loop: the output's `signal`, else the whole output."""
        return wake_signal(self.value)

    @property
    def detail(self) -> Any:
        """What the prompt shows but never wakes the loop by itself (None: none)."""
        return self.value.get("detail") if isinstance(self.value, dict) else None

    @property
    def text(self) -> str:
        """The snapshot as lossy text (what the prompt quotes); its error when unreadable."""
        if self.body is None:
            return f"({self.error})" if self.error else ""
        return self.body.decode("utf-8", "replace")

    @property
    def failed(self) -> bool:
        """The snapshot is one of the shapes a failed sensor run leaves (sense/sensors)."""
        sig = self.value.get("signal") if isinstance(self.value, dict) else None
        if not isinstance(sig, dict):
            return False
        err = sig.get("error")
        return (err is True and "exit_code" in sig) or err in FAILURE_ERRORS

    def items_of(self, key: str) -> dict[str, Any]:
        """One map of the detail (sys-sessions' `workers`, …): {} when it is not one."""
        got = self.detail.get(key) if isinstance(self.detail, dict) else None
        return got if isinstance(got, dict) else {}


def read_reading(snapshots: str, name: str) -> Reading:
    """A reading from its file in snapshots/ (regular files only, bounded); a missing one has
    no body, an unreadable one says why in `error`."""
    path = f"{snapshots}/{name}.json"
    try:
        return Reading.from_json(name, store.read_regular(path, SNAPSHOT_MAX))
    except FileNotFoundError:
        return Reading(name, ok=False)
    except OSError as e:
        return Reading(name, ok=False, error=f"unreadable: {e.strerror or e}")


@dataclass(frozen=True)
class Snapshot:
    """The world of one beat: every reading by name (in name order) and the world hash."""

    hash: str
    readings: Mapping[str, Reading]

    @classmethod
    def of(cls, world_hash: str, readings: Iterable[Reading]) -> Snapshot:
        return cls(world_hash, {r.name: r for r in sorted(readings, key=lambda r: r.name)})

    def get(self, name: str) -> Reading | None:
        return self.readings.get(name)

    def __iter__(self) -> Iterator[Reading]:
        return iter(self.readings.values())

    def to_json(self) -> dict[str, Any]:
        """name -> the reading's JSON, as `status --json`'s `snapshots` (non-JSON left out)."""
        return {r.name: r.value for r in self if r.is_json}


def split_ages(reading: Reading) -> tuple[Any, dict[str, dict[str, Any]]]:
    """(the reading's value without its ages, item id -> {age key: value}) for the readings in
    AGE_KEYS: an age grows every beat, so the prompt keeps them out of its stable prefix and
    lists them in its volatile tail (decide/prompt). Any other reading, or one not shaped as
    the probe writes it, comes back as is."""
    value = reading.value
    spec = AGE_KEYS.get(reading.name)
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
