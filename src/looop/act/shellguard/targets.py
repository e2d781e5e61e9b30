"""What the tripwire protects beyond the system's own folders: your home, the data dir, the
looop checkout, the repos workers were given — and every ancestor of these. The caller builds
them once as a value (`Guard`, see act/protected.py) so the checks stay pure.

A path is compared after normalisation, not by its spelling: `~`, `$HOME`, `$PWD` and the other
known variables expanded, a relative path joined to the command's cwd, `//`, `.` and `x/..`
folded; symlinks through the guard's `resolve` (the one I/O, the caller's). Words arrive
lower-cased, so the targets are lower-cased too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase

from looop.act.shellguard.tables import _HOME_ROOTS, _SYSTEM_DIRS

# $name, ${name}, ${name:?…}, ${name:-…}, ${name=…} (set, its value stands), ${name%…},
# ${name%%…}, ${name#…}, ${name##…} (its value trimmed)
_VAR = re.compile(r"\$(?:\{([a-z_][a-z0-9_]*)(?:(:?[-?=]|%%?|##?)([^}]*))?\}|([a-z_][a-z0-9_]*))")
_BRACE = re.compile(r"(?<!\$)\{([^{}]*,[^{}]*)\}")  # {a,b}: not ${…}
_MAX_BRACES = 64  # alternatives a word is read as; the rest is read as written
_CWD_LINKS = ("/proc/self/cwd", "/proc/thread-self/cwd")  # ours would be the wrong process's
_GLOB = re.compile(r"[*?[]")
_WILD = frozenset("*?.")


@dataclass(frozen=True)
class Guard:
    """What one check knows of the world around the text: the protected targets (absolute,
    normal, lower-cased, each with what it is), the cwd the text starts in, the variables
    whose value is known (`home`, `pwd`, …), and how to resolve symlinks (None: lexically
    only). The default knows nothing: only the system folders and `~` as spelled trip."""

    targets: tuple[tuple[str, str], ...] = ()
    cwd: str | None = None
    names: tuple[tuple[str, str], ...] = ()
    # (absolute lower-cased path, follow its last symlink) -> the real path, lower-cased
    resolve: Callable[[str, bool], str] | None = None
    # the targets as the world spells them: a refusal names them in their own case
    spellings: tuple[str, ...] = ()

    def at(self, cwd: str | None) -> Guard:
        """The same guard for text run in `cwd` (None: a place the text does not tell)."""
        return self if cwd == self.cwd else replace(self, cwd=cwd)


NO_GUARD = Guard()


def braces(word: str) -> list[str]:
    """The words bash's brace expansion makes of `word` (`~/{a,..}`: `~/a`, `~/..`)."""
    done: list[str] = []
    todo = [word]
    while todo and len(done) + len(todo) < _MAX_BRACES:
        w = todo.pop()
        m = _BRACE.search(w)
        if m is None:
            done.append(w)
        else:
            alts = m.group(1).split(",")
            todo += [w[: m.start()] + alt + w[m.end() :] for alt in reversed(alts)]
    return done + todo


def _trim(value: str, op: str, pattern: str) -> str:
    """${name%pat}, %%, #, ##: the shortest / longest suffix / prefix matching removed."""
    cuts = range(len(value) + 1)
    if op.startswith("%"):
        for k in reversed(cuts) if op == "%" else cuts:
            if fnmatchcase(value[k:], pattern):
                return value[:k]
    else:
        for k in cuts if op == "#" else reversed(cuts):
            if fnmatchcase(value[:k], pattern):
                return value[k:]
    return value


def _expand_one(word: str, names: dict[str, str]) -> str | None:
    if word == "~" or word.startswith("~/"):
        home = names.get("home")
        if home is None:
            return None
        word = home + word[1:]
    elif word.startswith("~"):
        return None  # ~user: the system check reads it as spelled
    unknown = False

    def value(m: re.Match[str]) -> str:
        nonlocal unknown
        got = names.get(m.group(1) or m.group(4))
        if got is None:
            unknown = True
            return m.group(0)
        op = m.group(2) or ""
        return _trim(got, op, m.group(3)) if op[:1] in ("%", "#") else got

    word = _VAR.sub(value, word)
    return None if unknown or "$" in word or "`" in word else word


def expand(word: str, cwd: str | None, guard: Guard) -> str | None:
    """`word` as an absolute path (~ and known variables expanded, joined to `cwd` when
    relative), not yet normalised; None when the text alone cannot tell where it points."""
    names = dict(guard.names)
    for link in _CWD_LINKS:
        if cwd is not None and (word == link or word.startswith(link + "/")):
            word = cwd + word[len(link) :]
    path = _expand_one(word, names)
    if path is None or path.startswith("/"):
        return path
    base = None if cwd is None else _expand_one(cwd, names)
    if base is None or not base.startswith("/"):
        return None
    return f"{base.rstrip('/')}/{path}"


def segments(path: str) -> list[str]:
    """The names of an absolute path after `//`, `.` and `x/..` are folded (`/..` is `/`)."""
    out: list[str] = []
    for seg in path.split("/"):
        if seg == "..":
            if out:
                out.pop()
        elif seg not in ("", "."):
            out.append(seg)
    return out


def _every_entry(seg: str) -> bool:
    """`*`, `.*`, `*.*`: a glob that takes every entry of its folder (its dotfiles too)."""
    return "*" in seg and set(seg) <= _WILD


def system(segs: Sequence[str]) -> bool:
    """/, a system folder, or a home under /home (or macOS's /Users)."""
    path = "/" + "/".join(segs)
    return path in _SYSTEM_DIRS or (len(segs) == 2 and f"/{segs[0]}" in _HOME_ROOTS)


def _same(seg: str, target: str) -> bool:
    if _GLOB.search(seg):
        return fnmatchcase(target, seg)
    return seg == target


def _against(segs: Sequence[str], guard: Guard) -> str | None:
    """Which protected target `segs` is, or is an ancestor of (a glob may stand for a name)."""
    for target, what in guard.targets:
        tsegs = segments(target)
        if len(segs) <= len(tsegs) and all(map(_same, segs, tsegs)):
            return f"{what} {target}" if len(segs) == len(tsegs) else f"{what} {target} is in it"
    return None


def protected(word: str, cwd: str | None, guard: Guard, follow: bool) -> str | None:
    """What `word` destroys among the guard's targets (or, through a symlink, the system
    folders), said for a refusal; None when it stays clear of them. `follow`: the tool
    follows a symlink named last (chmod -R does, rm and mv do not — `x/` always does)."""
    for alt in braces(word):
        if (hit := _protected(alt, cwd, guard, follow)) is not None:
            return hit if alt == word else f"{word}: {hit}"
    return None


def _protected(word: str, cwd: str | None, guard: Guard, follow: bool) -> str | None:
    raw = expand(word, cwd, guard)
    if raw is None:
        return None
    segs = segments(raw)
    last = raw.rstrip("/").rsplit("/", 1)[-1]
    if segs and _every_entry(last):  # `~/*` empties the folder: aimed at the folder
        segs, raw, follow = segs[:-1], raw.rstrip("/")[: -len(last)], True
    if (hit := _against(segs, guard)) is not None:
        return f"{word} ({hit})"
    if guard.resolve is None or any(_GLOB.search(s) for s in segs):
        return None
    real = guard.resolve(raw, follow or raw.endswith("/"))
    rsegs = segments(real)
    if rsegs == segs:
        return None  # no symlink on the way: the spelling said it all
    if (hit := _against(rsegs, guard)) is None and system(rsegs):
        hit = "a system folder"
    return None if hit is None else f"{word} (through a symlink, {real}: {hit})"
