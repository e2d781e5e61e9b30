"""Every line a capped file ever held, read as it grows: the soak's record of every move over
the whole run, not only what the capped journal and events still keep at the end.

looop caps journal.md and events.jsonl by renaming the full file to `NAME.1` (replacing the
one before) and starting afresh. A follower holds the file open, so its reads go on through
the rename to the file's end (and the held file's inode cannot be reused meanwhile); when
NAME is a new file, `NAME.1` is read whole first if it is not the file held (two rotations
between reads), then the new file from its start. Three rotations between two reads would
lose a file: the soak reads every second or so, and a file takes minutes to fill.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO


@dataclass
class Follow:
    path: Path
    on_line: Callable[[str], None]
    files: int = 0  # files read: the first and one for each rotation seen
    _f: BinaryIO | None = None
    _rest: bytes = b""

    def poll(self) -> None:
        held = None
        if self._f is not None:
            self._take(self._f.read())
            held = os.fstat(self._f.fileno()).st_ino
        try:
            ino = os.stat(self.path).st_ino
        except OSError:
            return  # not there yet, or mid-rotation: next time
        if ino == held:
            return
        if self._f is not None:
            self._end_file()  # the held file is whole: it was rotated away
            try:
                with open(self.path.with_name(self.path.name + ".1"), "rb") as older:
                    if os.fstat(older.fileno()).st_ino not in (held, ino):
                        self._read_whole(older)  # a file that came and went between reads
            except OSError:
                pass
        try:
            f = open(self.path, "rb")  # noqa: SIM115 (held open across reads on purpose)
        except OSError:
            return
        self._f = f
        self.files += 1
        self._take(f.read())

    def close(self) -> None:
        if self._f is not None:
            self._take(self._f.read())
        self._end_file()

    def _read_whole(self, f: BinaryIO) -> None:
        self.files += 1
        self._take(f.read())
        if self._rest:
            rest, self._rest = self._rest, b""
            self.on_line(rest.decode("utf-8", "replace"))

    def _take(self, raw: bytes) -> None:
        if not raw:
            return
        *whole, self._rest = (self._rest + raw).split(b"\n")
        for line in whole:
            self.on_line(line.decode("utf-8", "replace"))

    def _end_file(self) -> None:
        """A rotated file is complete: its last line needs no newline to be whole."""
        if self._f is not None:
            self._f.close()
            self._f = None
        if self._rest:
            rest, self._rest = self._rest, b""
            self.on_line(rest.decode("utf-8", "replace"))
