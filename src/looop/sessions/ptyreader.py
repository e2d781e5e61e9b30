"""The PTY's reader: a child's non-blocking PTY master read on the supervisor's loop (see
evloop.py), back to back until it is empty or a batch is full, each batch handed on in one
piece (see pump.py for where it goes).
"""

from __future__ import annotations

import os
import select
from time import monotonic
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from looop.sessions.evloop import Loop

# A Linux PTY hands out at most 4 KiB per read; a batch is this many reads in a row, taken
# on in one piece (one log write, one backlog entry, one screen push per batch).
READ_SIZE = 4096
READ_BATCH = 64
# In a burst (a batch already this big) an empty PTY is refilled by the writer within
# moments: the reader waits for it right there, up to BURST_WAIT_MS at a time and BATCH_S in
# all, instead of going back round the loop for every 4 KiB. A trickle (an echo, a repaint)
# never waits. BATCH_S is also the longest the loop is held by one batch.
BURST_MIN = 16 * 1024
BURST_WAIT_MS = 2
BATCH_S = 0.005


class PtyReader:
    """Reads a child's PTY master on the loop; `deliver` gets each batch, `done` runs once
    after the last byte (EOF, or EIO once every slave fd is closed)."""

    def __init__(
        self,
        master: int,
        loop: Loop,
        deliver: Callable[[bytes], None],
        done: Callable[[], None],
    ) -> None:
        self.master = master
        self.loop = loop
        self.deliver = deliver
        self.done = done
        self.finished = False  # `done` was called
        self.reading = True
        self.poller: Any = None  # made at the first burst (a select.poll on the master)
        loop.add_reader(master, self._readable)

    def _refilled(self, deadline: float) -> bool:
        """In a burst: wait (briefly) until the PTY has more, True when it has."""
        wait_ms = min(BURST_WAIT_MS, int((deadline - monotonic()) * 1000))
        if wait_ms <= 0:
            return False
        poller = self.poller
        if poller is None:
            poller = self.poller = select.poll()
            poller.register(self.master, select.POLLIN)
        return bool(poller.poll(wait_ms))

    def _readable(self) -> None:
        master, read = self.master, os.read
        parts: list[bytes] = []
        size = 0
        eof = False
        deadline = 0.0
        for _ in range(READ_BATCH):
            try:
                data = read(master, READ_SIZE)
            except BlockingIOError:
                if size < BURST_MIN:
                    break
                if not deadline:
                    deadline = monotonic() + BATCH_S
                if not self._refilled(deadline):
                    break
                continue
            except InterruptedError:
                continue
            except OSError:  # EIO: every slave fd is closed
                data = b""
            if not data:
                eof = True
                break
            parts.append(data)
            size += len(data)
        if parts:
            self.deliver(parts[0] if len(parts) == 1 else b"".join(parts))
        if eof and self.reading:
            self.stop()
            self.finished = True
            self.done()

    def stop(self) -> bool:
        """Stop reading (the master is about to close). Always True: nothing to wait for."""
        if self.reading:
            self.reading = False
            self.loop.remove_reader(self.master)
        return True
