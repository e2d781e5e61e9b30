"""How a long-lived process collects garbage and gives memory back.

verbs/console.py raises the young generation's threshold so that a light verb, which ends within
milliseconds, never stops to collect. The count behind that threshold is allocations minus
frees, so a process that lives for days and makes a little cyclic garbage on each beat or
request (a ctypes type, an exception with its frames, an asyncio future) may go hours between
collections, its garbage and RSS growing all the while: the pulse, the web, the hosts and the
supervisors collect as Python does by default.

glibc's malloc serves a block of 128 kB or more on its own mapping, given back when freed;
but the first such block freed raises that bar to its own size (up to 32 MB), and the bar for
giving back the heap's free top to twice that. CPython frees big blocks early (a resized
table of interned names, a file read whole), so from then on every large buffer a beat reads
lands in the heap, and the heap keeps its freed megabytes: a pulse measured +1.4 kB a beat,
flat once the bars are fixed (bench/soak_beats.py, docs/BENCHMARKS.md). The pulse and the web
fix them at glibc's own starting values; elsewhere (musl, macOS) there is nothing to fix."""

from __future__ import annotations

import ctypes
import gc

DEFAULT_THRESHOLD = (700, 10, 10)  # CPython's own
# glibc's mallopt parameters, and the starting value of both bars (malloc/malloc.c)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
HEAP_BAR = 128 * 1024


def long_lived() -> None:
    gc.set_threshold(*DEFAULT_THRESHOLD)
    fix_heap_bars()


def fix_heap_bars() -> bool:
    """Keep glibc's two bars where they start, whatever is freed later: True when set
    (False without glibc's mallopt)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    # setting either one also stops glibc moving both
    done = [mallopt(p, HEAP_BAR) for p in (M_MMAP_THRESHOLD, M_TRIM_THRESHOLD)]
    return all(r == 1 for r in done)


class _MallInfo2(ctypes.Structure):
    """glibc's struct mallinfo2 (2.33+), its fields in order."""

    _NAMES = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
    _fields_ = [(n, ctypes.c_size_t) for n in _NAMES.split()]


def heap_figures() -> dict[str, int]:
    """What glibc's C heap holds, in bytes: `heap` taken by brk, `used` and `free` in it,
    `mapped` in big blocks on their own mappings, and `chunks` (free fragments) — the
    figures the bars above move; empty without glibc 2.33+."""
    try:
        fn = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return {}
    fn.restype = _MallInfo2
    m = fn()
    return {
        "heap": int(m.arena),
        "used": int(m.uordblks),
        "free": int(m.fordblks),
        "mapped": int(m.hblkhd),
        "chunks": int(m.ordblks),
    }
