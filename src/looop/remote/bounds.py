"""A worker's bounds away from home: the home's worker_max_pids, worker_max_memory and
worker_max_disk travel with its start (an SSH host's `spawn` request, a pod's environment), so
a worker on a host or in a cluster is bounded as it would be at home, whatever that host's own
knobs say. The far side checks what it is sent as outside input: one line for a bad one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from looop.home.errors import LooopError
from looop.home.knobs import KNOBS, Knobs
from looop.views.outcomes import BOUND_WORDS
from looop.workers.diskuse import size

# a bound's word in a request, and its knob
NAMES = {"pids": "worker_max_pids", "memory": "worker_max_memory", "disk": "worker_max_disk"}
# what a line calls each bound


def sent(knobs: Knobs) -> dict[str, int]:
    """The bounds a start carries: the home's knobs (0: none)."""
    return {word: knobs.num(knob) for word, knob in NAMES.items()}


def checked(given: Mapping[str, Any]) -> dict[str, int]:
    """Every bound, each a whole number within its knob's range (a missing one: 0, none)."""
    out = {}
    for word, knob in NAMES.items():
        n, top = given.get(word, 0), int(KNOBS[knob].maximum)
        if type(n) is not int or not 0 <= n <= top:
            raise LooopError(
                f"the worker's {word} bound {str(n)[:40]!r} is not a whole number from 0 to {top}"
            )
        out[word] = n
    return out


def taken(raw: Any, sid: str, knobs: Knobs) -> Knobs:
    """`knobs` with the bounds the home sent in place of this side's own; `raw` None (a home
    older than bounds): this side's own stand. A bad one is refused in one line naming it."""
    if raw is None:
        return knobs
    if not isinstance(raw, dict):
        raise LooopError(f"worker {sid}: the home sent bounds this host cannot read")
    try:
        got = checked(raw)
    except LooopError as e:
        raise LooopError(f"worker {sid}: {e}") from None
    values = {**knobs.values, **{NAMES[word]: n for word, n in got.items()}}
    return Knobs(values, knobs.given | frozenset(NAMES.values()))


def shown(word: str, n: int) -> str:
    """A bound as a line names it: `process limit 512`, `memory limit 4.0 GiB`."""
    return f"{BOUND_WORDS.get(word, word)} limit {n if word == 'pids' else size(n)}"
