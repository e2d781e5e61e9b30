"""The coalesce window: changes that arrive within `coalesce` seconds make one decide, the
window kept in the state file `.coalesce.json` from the change that opened it to the beat at
its end. Apart from the beat because it is the window's state, not a gate: the beat's gate
asks it how long is left (`_gate_coalesce`), and an unchanged world closes it."""

from __future__ import annotations

import math

from looop.home import store
from looop.home.errors import CorruptState
from looop.home.paths import Paths

COALESCE_FILE = ".coalesce.json"


def coalesce_left(paths: Paths, now: float, slept: float, window: int) -> int:
    """Changes that arrive within `coalesce` seconds make one decide. The first change opens
    a window at the earliest moment it can have arrived (the pulse's last beat, which did not
    see it); the beat at the window's end decides on the world as it is then. A change a beat
    finds after a sleep as long as the window is already that old: it decides at once, so no
    decide waits longer than the window for coalescing. Seconds the beat should still wait
    (0: decide now); closes the window when it has ended."""
    path = paths.state(COALESCE_FILE)
    if slept >= window:
        store.remove(path)
        return 0
    try:
        rec = store.read_json_object(path) or {}
    except CorruptState:
        rec = {}
    since = rec.get("since")
    if not isinstance(since, int | float) or isinstance(since, bool) or since > now:
        # no window (or a stamp from the future: the clock stepped back): the change
        # arrived after the last beat, which slept `slept` seconds before this one
        since = now - slept
        store.write_json(path, {"v": 1, "since": since})
    left = since + window - now
    if left <= 0:
        store.remove(path)
        return 0
    return max(1, math.ceil(left))


def coalesce_close(paths: Paths) -> None:
    """No window open: a forced beat decides now, or the change undid itself."""
    store.remove(paths.state(COALESCE_FILE))
