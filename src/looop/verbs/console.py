"""The `looop` console entry: the verb table (`verbs/table.py`) with fewer garbage collections,
and a verb its face served ended without the interpreter's teardown."""

from __future__ import annotations

import atexit
import gc
import os
import sys

TYPE_CHECKING = False  # not `from typing`: this is the first thing every command runs
if TYPE_CHECKING:
    from typing import Any

GC_THRESHOLD = 50_000  # allocations between young collections (Python's default: 700)


def main() -> None:
    # Fewer collections: a light verb ends before its garbage matters; a long-lived process
    # sets Python's own thresholds back (core/gcpolicy.py).
    gc.set_threshold(GC_THRESHOLD)
    import looop.verbs.table as table  # lazy: the verb table, after the GC threshold is set

    code: Any = 0
    try:
        table.main()
    except SystemExit as e:
        code = e.code
    light = _light(sys.argv[1:], table.FACE_VERBS)
    if light:
        _exit_now(code)
    raise SystemExit(code)


def _light(args: list[str], face_verbs: frozenset[str]) -> bool:
    """A verb its face served (verbs/table.py's FACE_VERBS) without click, with no other thread
    and no exit hook: nothing the interpreter's teardown would still do that anyone could
    notice."""
    if args[:1] == ["_"]:
        args = args[1:]
    faced = bool(args) and args[0] in face_verbs
    if not faced or "click" in sys.modules:
        return False
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        return False
    return atexit._ncallbacks() == 0


def _exit_now(code: Any) -> None:
    """Exit as SystemExit(code) would, without the interpreter's teardown (freeing every
    object one by one costs a light verb as much as its own work): the output is flushed
    first, and a light verb holds no other buffered file open."""
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code & 0xFF
    else:
        try:
            sys.stderr.write(f"{code}\n")
        except (OSError, ValueError):
            pass
        status = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass  # a reader that went away: nothing left to say to it
    os._exit(status)
