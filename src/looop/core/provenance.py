"""Who wrote a sensor or a worker's verify: a human (`looop sensor write`, `looop worker start
--verify`, the web, `looop init`'s seeds) or a decision. Kept beside the data, in `vouched/`,
where nothing a decision runs can write when the sandbox is on, as one line per thing —
`human <sha256>` or `decision <sha256>` — bound to the bytes written: a file edited afterwards,
replaced or put there by hand no longer matches, and counts as a decision's (fail closed)."""

from __future__ import annotations

import os

from looop.home import hashing, store
from looop.home.paths import Paths

HUMAN = "human"
DECISION = "decision"
SENSOR = "sensor"
VERIFY = "verify"
_MAX = 256  # a record is one short line; anything longer is not ours


def _path(paths: Paths, kind: str, name: str) -> str:
    return os.path.join(str(paths.vouched), f"{kind}-{name}")


def digest(content: bytes) -> str:
    return hashing.digest(content, sha256=True)


def write(paths: Paths, kind: str, name: str, content: bytes, by: str) -> None:
    """Record who wrote `content` (write the thing first, then this: a crash between leaves
    it unvouched, which only ever sandboxes more)."""
    store.atomic_write(_path(paths, kind, name), f"{by} {digest(content)}\n")


def forget(paths: Paths, kind: str, name: str) -> None:
    store.remove(_path(paths, kind, name))
    store.remove(_path(paths, UNREAD, f"{kind}-{name}"))


# A decision's sensor or verify the tripwire cannot read (python, `node -e`, …) was allowed
# only because the shell sandbox was on. Its marker `unread-<kind>-<name>` (the bytes' sha256)
# keeps it from running should the sandbox be turned off later; a name of its own, so a beat
# finds every marker with one listing and a human's sensor costs nothing.
UNREAD = "unread"


def mark_unread(paths: Paths, kind: str, name: str, content: bytes) -> None:
    store.atomic_write(_path(paths, UNREAD, f"{kind}-{name}"), digest(content) + "\n")


def unread_names(paths: Paths, kind: str) -> set[str]:
    """The names of `kind` with an unread marker (one listing of vouched/)."""
    prefix = f"{UNREAD}-{kind}-"
    try:
        names = os.listdir(paths.vouched)
    except OSError:
        return set()
    return {n[len(prefix) :] for n in names if n.startswith(prefix) and ".tmp." not in n}


def is_unread(paths: Paths, kind: str, name: str, content: bytes) -> bool:
    """These very bytes are a decision's that the tripwire cannot read."""
    try:
        raw = store.read_regular(_path(paths, UNREAD, f"{kind}-{name}"), _MAX, follow=False)
    except OSError:
        return False
    return raw.strip().decode("ascii", "replace") == digest(content)


def _read(paths: Paths, kind: str, name: str) -> tuple[str, str] | None:
    try:
        raw = store.read_regular(_path(paths, kind, name), _MAX, follow=False)
    except OSError:  # missing, or not a regular file (store.NotRegular)
        return None
    words = raw.decode("ascii", "replace").split()
    if len(raw) > _MAX or len(words) != 2 or words[0] not in (HUMAN, DECISION):
        return None
    return words[0], words[1]


def by_human(paths: Paths, kind: str, name: str, content: bytes) -> bool:
    """A human wrote exactly these bytes: the only case that runs outside the sandbox."""
    got = _read(paths, kind, name)
    return got is not None and got[0] == HUMAN and got[1] == digest(content)


def who(paths: Paths, kind: str, name: str, content: bytes | None) -> str:
    """For `sensor list`: human, decision, edited (a human's, changed since), or unknown (put
    there by hand, or its record is gone)."""
    got = _read(paths, kind, name)
    if got is None:
        return "unknown"
    if got[0] == HUMAN:
        return HUMAN if content is not None and got[1] == digest(content) else "edited"
    return DECISION
