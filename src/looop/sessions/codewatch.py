"""Whether a preloaded host still runs the code on disk: the files it loaded, watched.

The beat host answers `stale` and exits once any file it preloaded changed (an edit, an
upgrade), so a caller never runs older code than its own. Every request asks, so asking must
cost next to nothing: on Linux the files' directories are watched with inotify and a request
costs one non-blocking read; elsewhere (or when inotify refuses, e.g. out of watches) every
file is stat'ed, about 2 µs each.
"""

from __future__ import annotations

import ctypes
import os
import struct

_IN_MODIFY = 0x2
_IN_ATTRIB = 0x4
_IN_CLOSE_WRITE = 0x8
_IN_MOVED_FROM = 0x40
_IN_MOVED_TO = 0x80
_IN_CREATE = 0x100
_IN_DELETE = 0x200
_IN_DELETE_SELF = 0x400
_IN_MOVE_SELF = 0x800
_IN_Q_OVERFLOW = 0x4000
_IN_IGNORED = 0x8000
# a file written, replaced, renamed, removed or re-stamped; the directory itself gone
_MASK = (
    _IN_MODIFY
    | _IN_ATTRIB
    | _IN_CLOSE_WRITE
    | _IN_MOVED_FROM
    | _IN_MOVED_TO
    | _IN_CREATE
    | _IN_DELETE
    | _IN_DELETE_SELF
    | _IN_MOVE_SELF
)
# events that mean "we no longer know": the queue overflowed, a watch went away
_UNKNOWN = _IN_Q_OVERFLOW | _IN_IGNORED | _IN_DELETE_SELF | _IN_MOVE_SELF
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len (then len bytes of name)
_READ = 64 * 1024

Files = dict[str, tuple[int, int]]  # path: (size, mtime_ns) as loaded


class CodeWatch:
    """The files a host loaded, and whether any changed since. Made before the host forks:
    its forks share the watch (one queue), and whichever reads a change says stale."""

    def __init__(self, files: Files, use_inotify: bool = True) -> None:
        self.files = files
        self.fd = -1
        self.stale = False
        self._names: dict[int, frozenset[bytes]] = {}  # watch descriptor: file names in it
        if use_inotify:
            self._watch()
        # a change between the import and the watch: only the files' stamps can tell
        if not stamps_match(files):
            self.stale = True

    def _watch(self) -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            init, add = libc.inotify_init1, libc.inotify_add_watch
        except (OSError, AttributeError):
            return
        fd = init(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            return
        by_dir: dict[str, set[bytes]] = {}
        for path in self.files:
            folder, name = os.path.split(path)
            by_dir.setdefault(folder, set()).add(os.fsencode(name))
        for folder, names in by_dir.items():
            wd = add(fd, os.fsencode(folder), _MASK)
            if wd < 0:  # out of watches, a folder gone: stat every file instead
                os.close(fd)
                self._names.clear()
                return
            self._names[wd] = frozenset(names)
        self.fd = fd

    def fresh(self) -> bool:
        """No file the host loaded changed (else it is stale, and stays so)."""
        if self.stale:
            return False
        if self.fd < 0:
            self.stale = not stamps_match(self.files)
            return not self.stale
        while True:
            try:
                raw = os.read(self.fd, _READ)
            except BlockingIOError:
                return True  # nothing happened to any watched folder
            except OSError:
                self.stale = True  # the watch broke: assume the worst
                return False
            if not raw or self._changed(raw):
                self.stale = True
                return False

    def _changed(self, raw: bytes) -> bool:
        at = 0
        while at + _EVENT.size <= len(raw):
            wd, mask, _cookie, size = _EVENT.unpack_from(raw, at)
            name = raw[at + _EVENT.size : at + _EVENT.size + size].rstrip(b"\0")
            at += _EVENT.size + size
            if mask & _UNKNOWN or name in self._names.get(wd, frozenset()):
                return True
        return False  # an editor's swap file, a neighbour: not code we run


def stamps_match(files: Files) -> bool:
    """Every file is still the one loaded: same size and mtime."""
    for path, (size, mtime) in files.items():
        try:
            st = os.stat(path)
        except OSError:
            return False
        if st.st_size != size or st.st_mtime_ns != mtime:
            return False
    return True
