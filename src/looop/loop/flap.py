"""Flap damping, the way monitoring systems do it (Nagios): per sensor, which of the last
`window` beats changed its wake signal, weighted towards the newest; at or above `high`
percent, with changes on two beats in a row or three in the window, the sensor is flapping
and its signal is pinned (it stops waking the loop, its reading stays in the snapshot),
below `low` it has settled and its signal counts again.

State lives in `.signal-flap.json` (atomic writes), so a restart neither forgets a flapping
sensor nor re-learns its history. Starting and settling each leave one notice for the next
prompt; the notices go once a decision was carried out. Only sensors are judged: looop's
own sys-* probes carry no timestamps, and each of their changes is an event."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from looop.home import store
from looop.home.paths import Paths
from looop.loop.guards import read_record

VERSION = 2
NOTES_CAP = 50  # notices kept for the next prompt: a storm of flaps never grows the file


@dataclass(frozen=True)
class FlapPolicy:
    window: int  # beats of history per sensor
    high: float  # percent: at or above, flapping starts; 0 turns damping off
    low: float  # percent: below, a flapping sensor has settled

    @property
    def on(self) -> bool:
        return self.high > 0 and self.window >= 2


@dataclass
class FlapResult:
    flapping: list[str] = field(default_factory=list)  # snapshot names damped now
    started: list[str] = field(default_factory=list)  # began flapping this beat
    settled: list[str] = field(default_factory=list)  # settled this beat
    pinned: dict[str, str] = field(default_factory=dict)  # item key -> the signal that counts
    notes: list[str] = field(default_factory=list)  # what read_notes reads after this step


def percent(history: str, window: int) -> float:
    """Weighted percent of beats that changed: `history` is '0'/'1' per beat, oldest first,
    the newest at the window's end; weights run linearly from 0.8 (oldest) to 1.2 (newest),
    so they sum to `window` and one recent change counts a little more than an old one."""
    if window < 2:
        return 0.0
    bits = history[-window:]
    offset = window - len(bits)
    total = 0.0
    for i, bit in enumerate(bits):
        if bit == "1":
            total += 0.8 + 0.4 * (offset + i) / (window - 1)
    return 100.0 * total / window


def _load(paths: Paths) -> dict[str, Any]:
    # unreadable: re-baseline; a lost history costs a few beats of detection, nothing more
    obj = read_record(paths.signal_flap) or {}
    return obj if obj.get("v") == VERSION else {}


def track(
    paths: Paths,
    items: dict[str, str],
    policy: FlapPolicy,
    committed: Callable[[], dict[str, str] | None],
) -> FlapResult:
    """One beat's step for every snapshot item; `committed` gives the world the decider last
    saw (a sensor that starts flapping is pinned to its signal there), asked for only then."""
    res = FlapResult()
    obj = _load(paths)
    raw = obj.get("items")
    prev: dict[str, Any] = raw if isinstance(raw, dict) else {}
    notes = _notes(obj)
    acted = obj.get("acted") is True  # the last beat carried out a move (settle_move)
    out: dict[str, Any] = {}
    for key, sig in items.items():
        if not key.startswith("snap:") or key.startswith("snap:sys-"):
            continue  # looop's own probes (schedules, asks, workers) change for real each time
        got = prev.get(key)
        rec = got if isinstance(got, dict) and isinstance(got.get("sig"), str) else None
        # a change on the beat after a move is the move's doing: it never counts as a flap
        changed = rec is not None and rec["sig"] != sig and not acted
        # oldest-first and right-aligned, so leading zeros say nothing: a calm sensor keeps
        # "" and a skip beat writes no file
        old = rec.get("hist") if rec else None
        old = old if isinstance(old, str) and set(old) <= {"0", "1"} else ""
        hist = (old + ("1" if changed else "0"))[-max(policy.window, 1) :].lstrip("0")
        # erratic, not news: changes on two beats in a row (a toggle, a counter) or three in
        # the window; two a beat or more apart (a file filed, a new one arriving) are events
        erratic = hist.endswith("11") or hist.count("1") >= 3
        # damping turned off: nothing stays flapping, so nothing stays pinned
        flapping = bool(rec and rec.get("flapping")) and policy.on
        pin = rec.get("pinned") if rec and isinstance(rec.get("pinned"), str) else None
        pct = percent(hist, policy.window)
        name = key[len("snap:") :]
        if not flapping and policy.on and changed and pct >= policy.high and erratic:
            flapping = True
            assert rec is not None  # changed implies a record
            pin = (committed() or {}).get(key, rec["sig"])
            res.started.append(name)
            notes.append(f"{name} started flapping ({pct:.0f}% of recent beats changed)")
        elif flapping and pct < policy.low:
            flapping, pin = False, None
            res.settled.append(name)
            notes.append(f"{name} settled: its signal counts again")
        entry: dict[str, Any] = {"sig": sig, "hist": hist}
        if flapping and pin is not None:
            entry["flapping"], entry["pinned"] = True, pin
            res.flapping.append(name)
            res.pinned[key] = pin
        out[key] = entry
    res.notes = notes[-NOTES_CAP:]
    new = {"v": VERSION, "items": out, "notes": res.notes}
    if new != obj:
        store.write_json(paths.signal_flap, new)
    return res


def read_notes(paths: Paths) -> list[str]:
    """The start/settle notices not yet shown to a decision that was carried out."""
    return _notes(_load(paths))


def _notes(obj: dict[str, Any]) -> list[str]:
    raw = obj.get("notes")
    return [n for n in raw if isinstance(n, str)] if isinstance(raw, list) else []


def settle_move(paths: Paths, shown: list[str], acted: bool) -> None:
    """A decision was carried out: drop the notices it saw (newer ones stay for the next),
    and when it was a move (not a noop), mark the next beat's changes as its consequences:
    a loop that files the inbox it was woken by changes that sensor back on the very next
    beat, and that is the loop working, not the sensor flapping."""
    obj = _load(paths)
    notes = obj.get("notes")
    rest = list(notes) if isinstance(notes, list) else []
    for n in shown:
        if n in rest:
            rest.remove(n)
    new = {**obj, "v": VERSION, "notes": rest}
    if acted:
        new["acted"] = True
    else:
        new.pop("acted", None)
    if new != obj and (obj or acted):
        store.write_json(paths.signal_flap, new)
