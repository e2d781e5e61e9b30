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


def _fault(what: str, path: str, up: str, st: os.stat_result) -> tuple[str, str] | None:
    """Why `up` (the path itself, or a folder above it) lets another user write the path."""
    q = shlex.quote(up)
    mode = stat.S_IMODE(st.st_mode)
    where = f"{what} {path}" if up == path else f"{what} {path} sits in {up}, which"
    if not _owned(st):
        fix = (
            f"use a {what} of your own"
            if up == path
            else f"move the {what} into a folder of your own"
        )
        chown = f"run `chown {os.geteuid()} {q}`, or " if up == path else ""
        return (f"{where} belongs to another user (uid {st.st_uid})", chown + fix)
    if up == path and mode & _OTHERS_WRITE:
        return (f"{where} is writable by other users (mode {mode:04o})", f"run `chmod go-w {q}`")
    if mode & _OTHERS_WRITE and not mode & stat.S_ISVTX:
        return (
            f"{where} other users can write (mode {mode:04o})",
            f"run `chmod go-w {q}` (or `chmod +t {q}`)",
        )
    return None


def problem(paths: Paths) -> tuple[str, str] | None:
    """The first way another user could write this home and its fix; None when only this
    user (and root) can: the data dir and the config, then every folder above each (one not
    made yet is ours once made)."""
    for what, path in (("data dir", str(paths.data)), ("config", str(paths.config))):
        up = path
        while True:
            try:
                said = _fault(what, path, up, os.stat(up))
            except OSError:
                said = None
            if said:
                return said
            if up == os.path.dirname(up):
                break
            up = os.path.dirname(up)
    return None


def refuse_unsafe(paths: Paths) -> None:
    """UnsafeHome, one line, when another user could write this home."""
    said = problem(paths)
    if said is not None:
        raise UnsafeHome(f"{said[0]}: {said[1]}")
