"""When a worker last printed, on clocks a wall-clock step cannot move.

A session's supervisor writes `log/output.last` (one line, `<monotonic> <boottime>`, replaced
by rename) when its run first prints after a second's quiet, and once more when the output
stops, so it is never more than a second behind. The readers (`looop ls`, the beat's
sys-sessions reading, the page, the TUI) judge from it:

- how long a worker has been quiet, for `stuck`, on CLOCK_MONOTONIC, which stops while the
  machine sleeps: a worker frozen with the machine had no chance to print, so a resume from
  suspend does not make every quiet worker stuck at once (the pulse's watchdog judges its
  heartbeat on the same clock, sessions/oscalls.HeartWatch);
- when it last printed, shown as a time and as IDLE, on CLOCK_BOOTTIME, which counts the
  sleep: the output an evening before a suspend was an evening ago.

A wall-clock step (NTP, `date -s`, a restored VM) moves neither. output.log's mtime is the
wall clock's: it stays the answer where there is no mark (a session started before marks, a
finished run: its mark may be from a boot before this one). Standard library only: the
supervisor writes through here and `looop ls` reads on its fast path.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from looop.home.logfiles import DIR, LOG, put_line

if TYPE_CHECKING:
    from looop.home.clock import Clock

MARK = "output.last"  # in the session's log folder (logfiles.DIR), beside output.pos
MARK_BYTES = 64


def write_mark(fdir: str, mono: float, boot: float) -> None:
    """Replace `fdir/output.last` by rename: a reader sees the old mark or the new."""
    put_line(os.path.join(fdir, MARK), f"{mono:.3f} {boot:.3f}\n")


def drop_mark(fdir: str) -> None:
    """No mark rather than a stale one (a mark that cannot be written): the readers fall
    back to output.log's time."""
    try:
        os.unlink(os.path.join(fdir, MARK))
    except OSError:
        pass


def read_mark(sdir: str) -> tuple[float, float] | None:
    """(monotonic, boottime) of the session's last output; None without a readable one."""
    try:
        fd = os.open(os.path.join(sdir, DIR, MARK), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        raw = os.read(fd, MARK_BYTES)
    except OSError:
        return None
    finally:
        os.close(fd)
    words = raw.split()
    if len(words) != 2:
        return None
    try:
        mono, boot = float(words[0]), float(words[1])
    except ValueError:
        return None
    if not (0.0 <= mono < 1e12 and 0.0 <= boot < 1e12):  # NaN, negative or absurd: no mark
        return None
    return mono, boot


def log_time(sdir: str) -> float | None:
    """output.log's mtime: the wall clock's answer (no mark)."""
    try:
        return os.stat(os.path.join(sdir, LOG)).st_mtime
    except OSError:
        return None


def last_output(sdir: str, alive: bool, clock: Clock) -> tuple[float | None, float | None]:
    """(when the session last printed as today's unix time, seconds it has been quiet on
    the monotonic clock), either None when unknown. A live session's mark is of this boot
    (its supervisor wrote one at its start); a mark from the future of this boot's clocks
    is not (another boot's): output.log's time answers then, as for a finished run."""
    mark = read_mark(sdir) if alive else None
    if mark is not None:
        quiet = clock.monotonic() - mark[0]
        since = clock.boottime() - mark[1]
        if quiet >= 0.0 and since >= 0.0:
            return clock.now() - max(since, quiet), quiet
    wall = log_time(sdir)
    return wall, (clock.now() - wall if wall is not None else None)
