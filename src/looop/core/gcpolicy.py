"""How a long-lived process collects garbage.

verbs/console.py raises the young generation's threshold so that a light verb, which ends within
milliseconds, never stops to collect. The count behind that threshold is allocations minus
frees, so a process that lives for days and makes a little cyclic garbage on each beat or
request (a ctypes type, an exception with its frames, an asyncio future) may go hours between
collections, its garbage and RSS growing all the while: the pulse, the web, the hosts and the
supervisors collect as Python does by default."""

from __future__ import annotations

import gc

DEFAULT_THRESHOLD = (700, 10, 10)  # CPython's own


def long_lived() -> None:
    gc.set_threshold(*DEFAULT_THRESHOLD)
