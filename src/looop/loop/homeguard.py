"""Only its owner writes a home. Another user who can write the data dir (or the config, or a
folder above either that is not sticky) can plant `.decision.json` during a decide, a sensor,
a hook: what runs then runs as the owner. `init`, `doctor` and the pulse refuse such a home in
one line naming the `chmod`/`chown` that fixes it.

What is checked: the data dir and the config file themselves (no group or other write bit, this
user's or root's), then every folder above each of them (not writable by group or others unless
sticky — a sticky folder lets nobody rename what is not theirs — and this user's or root's).
Root is trusted throughout: it can write anything anyway."""

from __future__ import annotations

import os
import shlex
import stat

from looop.home.errors import LooopError
from looop.home.paths import Paths

_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH


class UnsafeHome(LooopError):
    pass


def _owned(st: os.stat_result) -> bool:
    return st.st_uid in (os.geteuid(), 0)


def _itself(what: str, path: str, st: os.stat_result) -> tuple[str, str] | None:
    q = shlex.quote(path)
    mode = stat.S_IMODE(st.st_mode)
    if not _owned(st):
        return (
            f"{what} {path} belongs to another user (uid {st.st_uid})",
            f"run `chown {os.geteuid()} {q}`, or use a {what} of your own",
        )
    if mode & _OTHERS_WRITE:
        return (
            f"{what} {path} is writable by other users (mode {mode:04o})",
            f"run `chmod go-w {q}`",
        )
    return None


def _above(what: str, path: str) -> tuple[str, str] | None:
    """The first folder above `path` another user could rename it out of, or own."""
    up = os.path.dirname(path)
    while True:
        try:
            st = os.stat(up)
        except OSError:
            st = None  # not made yet: what makes it makes it ours
        if st is not None:
            q = shlex.quote(up)
            mode = stat.S_IMODE(st.st_mode)
            if not _owned(st):
                return (
                    f"{what} {path} sits in {up}, which belongs to another user (uid {st.st_uid})",
                    f"move the {what} into a folder of your own",
                )
            if mode & _OTHERS_WRITE and not mode & stat.S_ISVTX:
                return (
                    f"{what} {path} sits in {up}, which other users can write (mode {mode:04o})",
                    f"run `chmod go-w {q}` (or `chmod +t {q}`)",
                )
        if up == os.path.dirname(up):
            return None
        up = os.path.dirname(up)


def problem(paths: Paths) -> tuple[str, str] | None:
    """The first way another user could write this home and its fix; None when only this
    user (and root) can."""
    for what, path in (("data dir", str(paths.data)), ("config", str(paths.config))):
        try:
            st = os.stat(path)
        except OSError:
            st = None
        said = (_itself(what, path, st) if st is not None else None) or _above(what, path)
        if said:
            return said
    return None


def refuse_unsafe(paths: Paths) -> None:
    """UnsafeHome, one line, when another user could write this home."""
    said = problem(paths)
    if said is not None:
        raise UnsafeHome(f"{said[0]}: {said[1]}")
