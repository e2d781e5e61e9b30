"""A folder a worker's box could have written (claims/, tells/, asks/, answers/, reports/, a
box's tmp and work): read, swept and written by the host without ever following a link a box
made, blocking on a FIFO it put there, or reading without bound.

Opened once as a directory fd (its own name never a symlink: O_NOFOLLOW | O_DIRECTORY); every
entry is then named relative to that fd, so a folder swapped for a symlink after the open
changes nothing, and a symlinked folder is refused and said (`refused`), never followed. A
listing examines at most `limit` entries (`more` says there were others): a box that fills a
folder with 100k files costs a beat the bound, not the count. Light: the hot verbs use it."""

from __future__ import annotations

import errno
import os
import stat
from typing import TYPE_CHECKING

from looop.home import store, where
from looop.home.errors import CorruptState

if TYPE_CHECKING:
    from typing import Any

    from looop.home.store import AnyPath

FOLDER_MAX = 1000  # the most entries one listing examines
RECORD_MAX = 1024 * 1024  # the most bytes of one record read (an ask's prompt is far less)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY


class Folder:
    """One folder opened for reading and sweeping; a missing one lists nothing.

    `refused`: why it was not opened (a symlink or a file in the folder's place), one line."""

    __slots__ = ("fd", "more", "path", "refused")

    def __init__(self, path: AnyPath, parent: Folder | None = None, name: str = "") -> None:
        self.path: str = os.fspath(path) if parent is None else os.path.join(parent.path, name)
        self.fd = -1
        self.more = False
        self.refused: str | None = None
        if parent is not None and parent.fd < 0:
            self.refused = parent.refused
            return
        try:
            at = parent.fd if parent is not None else None
            self.fd = os.open(self.path if at is None else name, _DIR_FLAGS, dir_fd=at)
        except FileNotFoundError:
            pass
        except OSError as e:
            if e.errno not in (errno.ENOTDIR, errno.ELOOP):
                raise
            self.refused = f"{self.path} is {_kind(self.path)}: not followed"

    def __enter__(self) -> Folder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def sub(self, name: str) -> Folder:
        """A folder inside this one, opened relative to it (close it too)."""
        return Folder("", self, name)

    def names(self, suffix: str = ".json", limit: int = FOLDER_MAX) -> list[str]:
        """The regular files named `*suffix` (dot files, temps, are not), sorted; at most
        `limit` entries of any kind are examined (`more` then says there were others)."""
        self.more = False
        if self.fd < 0:
            return []
        out: list[str] = []
        seen = 0
        with os.scandir(self.fd) as it:
            for entry in it:
                if seen >= limit:
                    self.more = True
                    break
                seen += 1
                n = entry.name
                if n.endswith(suffix) and n[0] != "." and _regular(entry):
                    out.append(n)
        out.sort()
        return out

    def note(self, shown: str) -> str | None:
        """One line saying what a listing left out or refused (`shown`: the folder's name)."""
        if self.refused is not None:
            return f"{shown}/ is a symlink or a file, not a folder: not read"
        if self.more:
            return f"{shown}/ holds more than {FOLDER_MAX} entries: only {FOLDER_MAX} read"
        return None

    def lstat(self, name: str) -> os.stat_result | None:
        """The entry's own stat (a symlink's, never its target's); None when missing."""
        if self.fd < 0:
            return None
        try:
            return os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def has(self, name: str) -> bool:
        return self.lstat(name) is not None

    def read(self, name: str, limit: int = RECORD_MAX) -> bytes:
        """A regular file's bytes, at most `limit` (CorruptState past it); FileNotFoundError
        when missing; store.NotRegular for a symlink, FIFO, device or folder."""
        if self.fd < 0:
            raise FileNotFoundError(errno.ENOENT, "no such folder", self.path)
        try:
            fd = os.open(name, _FILE_FLAGS, dir_fd=self.fd)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENXIO):
                raise store.NotRegular(e.errno, "not a regular file", name) from None
            raise
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise store.NotRegular(errno.EINVAL, "not a regular file", name)
            got = f.read(min(limit, st.st_size) + 1)
        if len(got) > limit:
            raise CorruptState(f"{os.path.join(self.path, name)} is over {limit} bytes")
        return got

    def read_json(self, name: str, limit: int = RECORD_MAX) -> Any:
        """Parsed JSON, None when missing; CorruptState when anything else is wrong with it."""
        where = os.path.join(self.path, name)
        try:
            raw = self.read(name, limit)
        except FileNotFoundError:
            return None
        except OSError as e:
            raise CorruptState(f"cannot read {where}: {e.strerror}; delete it to reset") from e
        return store.json_of(raw, where)

    def read_object(self, name: str) -> dict[str, Any] | None:
        v = self.read_json(name)
        if v is not None and not isinstance(v, dict):
            raise CorruptState(f"{os.path.join(self.path, name)} does not hold a JSON object")
        return v

    def unlink(self, name: str) -> bool:
        """Remove the entry itself (a symlink, never what it points at); False when gone."""
        if self.fd < 0:
            return False
        try:
            os.unlink(name, dir_fd=self.fd)
        except FileNotFoundError:
            return False
        return True


def _regular(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file(follow_symlinks=False)
    except OSError:
        return False


def _kind(path: str) -> str:
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return "gone"
    return "a symlink" if stat.S_ISLNK(mode) else "a file, not a folder"


UNREADABLE_ASK = "(unreadable ask record)"


def unanswered(asks: Folder, answers: Folder) -> list[dict[str, Any]]:
    """The ask records in `asks` with no answer in `answers`, by file name (a bounded listing:
    `asks.more` says what it left out); an unreadable one stands as such, never hides its
    ask, and neither does an unreadable answer (the human must see it still waits)."""
    out: list[dict[str, Any]] = []
    for name in asks.names(".json"):
        if answers.has(name) and readable_answer(answers, name):
            continue
        try:
            rec = asks.read_object(name)
        except CorruptState:
            rec = {"id": name[: -len(".json")], "worker": "?", "prompt": UNREADABLE_ASK}
        if rec:
            out.append(rec)
    return out


def readable_answer(answers: Folder, name: str) -> bool:
    """Whether `name` is an answer a worker can act on: a JSON object with its text."""
    try:
        rec = answers.read_object(name)
    except CorruptState:
        return False
    return rec is not None and isinstance(rec.get("answer"), str)


def pending_asks(data: str) -> list[dict[str, Any]]:
    """human.mailbox.pending over plain strings (the fast path loads no pathlib): the ask
    records in data dir `data` with no answer yet, by file name. Here, beside the folders, so
    the beat's needs-you notifier (home/needs) reads them without loading home/status."""
    asks, answers = where.join(data, where.ASKS), where.join(data, where.ANSWERS)
    with Folder(asks) as asked, Folder(answers) as answered:
        return unanswered(asked, answered)
