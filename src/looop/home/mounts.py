"""Every spelling by which this machine reaches one folder: a bind mount is a second path to
the same inode, as a symlink is. The data dir is named by one spelling everywhere (where.py:
its runtime keys, its locks and sockets, the sandbox's walls), and a box's walls deny every
other spelling a bind mount gives it (sandbox/srt.py)."""

from __future__ import annotations

import os

MOUNTINFO = "/proc/self/mountinfo"
_ESCAPES = {"\\040": " ", "\\011": "\t", "\\012": "\n", "\\134": "\\"}


def _unescape(field: str) -> str:
    """mountinfo's octal escapes (space, tab, newline, backslash) undone."""
    if "\\" not in field:
        return field
    for k, v in _ESCAPES.items():
        field = field.replace(k, v)
    return field


def table(text: str) -> list[tuple[str, str, str]]:
    """(device, root within that device, mount point) of each line of a mountinfo, in order."""
    out = []
    for line in text.splitlines():
        f = line.split(" ")
        if len(f) >= 5 and f[4].startswith("/") and f[3].startswith("/"):
            out.append((f[2], _unescape(f[3]), _unescape(f[4])))
    return out


def _under(path: str, top: str) -> str | None:
    """What of `path` lies below `top` ('' when they are equal), None when it is not there."""
    if top == "/":
        return path[1:] if path.startswith("/") else None
    if path == top:
        return ""
    return path[len(top) + 1 :] if path.startswith(top + "/") else None


def _join(top: str, rest: str) -> str:
    return top if not rest else (top.rstrip("/") + "/" + rest)


def spellings(path: str, text: str) -> tuple[list[tuple[str, str]], list[str]]:
    """For an absolute, symlink-free `path`: ([(mount root, spelling)] of every mount that
    shows the same folder, its own included; [mount points that show a part of it]).
    The mount a path is on is the last one with the longest point above it (a later mount
    on the same point hides an earlier one)."""
    mounts = table(text)
    on: tuple[str, str, str] | None = None
    for m in mounts:
        if _under(path, m[2]) is not None and (on is None or len(m[2]) >= len(on[2])):
            on = m
    if on is None:
        return [("/", path)], []
    rest = _under(path, on[2])
    assert rest is not None
    inner = _join(on[1], rest)  # the folder as its device names it
    whole: list[tuple[str, str]] = []
    parts: list[str] = []
    for dev, root, point in mounts:
        if dev != on[0]:
            continue
        below = _under(inner, root)
        if below is not None:
            whole.append((root, _join(point, below)))
        elif _under(root, inner) is not None:
            parts.append(point)  # a bind of something inside the folder
    return whole, parts


def read(proc: str = MOUNTINFO) -> str:
    try:
        with open(proc, encoding="utf-8", errors="surrogateescape") as f:
            return f.read()
    except OSError:
        return ""


def aliases(paths: list[str], proc: str = MOUNTINFO) -> list[str]:
    """Every other path under which a bind mount shows one of `paths` (absolute, symlinks
    resolved) or a part of it: what a box that sees the whole file system must be denied
    besides the paths themselves."""
    text = read(proc)
    out: list[str] = []
    for path in paths:
        whole, parts = spellings(path, text)
        out.extend(s for s in [*(s for _, s in whole), *parts] if s != path)
    return list(dict.fromkeys(out))


def canonical(path: str, proc: str = MOUNTINFO) -> str:
    """One spelling of the folder at `path` whichever way it is reached: symlinks resolved,
    and among the bind mounts that show it, the spelling through the mount of the widest
    root (the original, not a bind of a part), then the one mounted first (a later bind of
    the same root, e.g. of / elsewhere, is not the original). A spelling is taken only when
    it is the same inode; a path not there yet is only resolved."""
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except OSError:
        return real
    whole, _ = spellings(real, read(proc))
    best: tuple[int, int, str] = (1 << 30, 0, real)
    for i, (root, spelled) in enumerate(whole):
        key = (len(root), i, spelled)
        if key < best and _same(spelled, st):
            best = key
    return best[2]


def _same(path: str, st: os.stat_result) -> bool:
    try:
        other = os.stat(path)
    except OSError:
        return False
    return (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino)
