"""A sensor's `# looop:watch=PATH` lines: what it says it reads, where that is, and whether it
changed since a reading was taken (a sensor's cached reading is then stale, whatever its
`# looop:interval=N` says)."""

from __future__ import annotations

import contextlib
import os
import re

from looop.core.context import Ctx

_WATCH = re.compile(rb"^\s*#.*\blooop:watch\s*=\s*(\S.*?)\s*$")
ENTRIES_LOOKED = 1000  # a watched folder's entries looked at for a change; past it, the folder


def watch_in(lines: list[bytes]) -> list[str]:
    """The PATHs of the `# looop:watch=PATH` lines among a script's first lines, as written."""
    found = []
    for line in lines:
        m = _WATCH.match(line)
        if m:
            found.append(m.group(1).decode("utf-8", "replace"))
    return found


def declared(script: bytes, chunk: int = 4096) -> list[str]:
    """Every PATH a reader of this script's head could take for a watch: each line whole and
    cut in `chunk`s (sense/sensors reads its head so), wherever it stands."""
    lines = script.split(b"\n")
    return watch_in(lines + [ln[i : i + chunk] for ln in lines for i in range(0, len(ln), chunk)])


def resolve(ctx: Ctx, written: str) -> str:
    """`~` and `~/x` are the user's home (as the sensor's own shell reads them); a relative
    path is the data dir's, where sensors run."""
    home = ctx.env.get("HOME", "")
    if home and (written == "~" or written.startswith("~/")):
        return os.path.normpath(home + written[1:])
    return os.path.normpath(os.path.join(ctx.paths.data, written))


def _changed_at(path: str) -> float:
    """When what a watch sees last changed: a file's write or replace (its ctime moves on a
    rename too); a folder's, or any of its entries'; a missing path's folder (made, removed)."""
    try:
        st = os.stat(path)
    except OSError:
        try:
            st = os.stat(os.path.dirname(path))
        except OSError:
            return 0.0
        return max(st.st_mtime, st.st_ctime)
    at = max(st.st_mtime, st.st_ctime)
    if os.path.isdir(path):
        with contextlib.suppress(OSError), os.scandir(path) as it:
            for n, e in enumerate(it):
                if n >= ENTRIES_LOOKED:
                    break
                with_stat = e.stat(follow_symlinks=False)
                at = max(at, with_stat.st_mtime, with_stat.st_ctime)
    return at


def changed_since(ctx: Ctx, written: list[str], when: float) -> bool:
    """Whether a watched path changed after `when` (a wall-clock time, as file times are)."""
    return any(_changed_at(resolve(ctx, w)) > when for w in written)
