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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from itertools import islice, product

from looop.act.shellguard.expand import Unsure, Value, expand_word, magic

# Paths whose recursive delete or chmod/chown wrecks the machine or a home (lower-cased).
_SYSTEM_DIRS = frozenset(
    {"/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/mnt"}
    | {"/media", "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/usr", "/var"}
    | {"/snap", "/nix", "/system", "/library", "/applications", "/users", "/private"}
    | {"/usr/bin", "/usr/sbin", "/usr/lib", "/usr/lib64", "/usr/local", "/usr/share"}
    | {"/usr/include", "/usr/local/bin", "/usr/local/lib", "/var/lib", "/private/etc"}
)
# Every folder right under these is someone's home: the tripwire guards them all.
_HOME_ROOTS = frozenset({"/home", "/users"})

_BRACE = re.compile(r"(?<!\$)\{([^{}]*,[^{}]*)\}")  # {a,b}: not ${…}
_MAX_BRACES = 64  # alternatives a word is read as; the rest is read as written
_GLOB = re.compile(r"[*?[]")
_WILD = frozenset("*?.")
_ANY_PID = re.compile(r"^/proc/[^/]*[$`][^/]*/")
_SYSTEM_SEGS = [[s for s in p.split("/") if s] for p in sorted(_SYSTEM_DIRS)]
_REFS = re.compile(r"\$\{?[#!]?([a-z_][a-z0-9_]*|[0-9]+|[@*])")  # the names a word reads
_MAX_VALUES = 64  # values one name may take in a text; more is a value it cannot tell
_MAX_READINGS = 256  # combinations of them one word is checked under
_MAX_NAMES, _MAX_WORK = 256, 20_000  # names followed in one text, values evaluated for them


@dataclass(frozen=True)
class Guard:
    """What one check knows of the world around the text: the protected targets (absolute,
    normal, lower-cased, each with what it is), the cwd the text starts in, the variables
    whose value is known (`home`, `pwd`, …), and how to resolve symlinks (None: lexically
    only). The default knows nothing: only the system folders and `~` as spelled trip."""

    targets: tuple[tuple[str, str], ...] = ()
    cwd: str | None = None
    names: tuple[tuple[str, Value], ...] = ()
    # (absolute lower-cased path, follow its last symlink) -> the real path, lower-cased
    resolve: Callable[[str, bool], str] | None = None
    # the targets as the world spells them: a refusal names them in their own case
    spellings: tuple[str, ...] = ()
    # an absolute lower-cased glob -> the paths it matches on disk now, lower-cased (None:
    # more than can be checked); None: globs are read lexically only
    glob: Callable[[str], list[str] | None] | None = None
    # the positional parameters (and `{}`) are what xargs feeds the text
    fed: bool = False
    # what the text itself may set a name to, anywhere in it (None: the value it had before)
    sets: tuple[tuple[str, tuple[Value | None, ...]], ...] = ()

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


def expand(word: str, cwd: str | None, guard: Guard) -> str | None:
    """`word` as an absolute path (~, known variables and /proc's magic links expanded,
    joined to `cwd` when relative), `..` not yet folded; None when the text alone cannot
    tell where it points. Raises Unsure for a spelling it cannot evaluate on a known name."""
    names = dict(guard.names)
    word = _ANY_PID.sub("/proc/*/", word)  # every process's root is /: whichever it names
    try:
        here = None if cwd is None else expand_word(cwd, names)
    except Unsure:  # `cd ~-`: somewhere the text does not tell, like `cd -`
        here = None
    if here is not None and here.startswith("/"):
        names["pwd"] = here  # $PWD after the text's own `cd`s
    else:
        here = None
        names.pop("pwd", None)
    path = expand_word(word, names, guard.fed)
    if path is None:
        return None
    if not path.startswith("/"):
        if here is None:
            return None
        path = f"{here.rstrip('/')}/{path}"
    return magic(path, here)


def readings(word: str, guard: Guard) -> list[Guard]:
    """The guard under each combination of values the text may give the names `word` reads
    (`d=~; rm -rf $d`, `for d in a ~`): order and branches aside, every one of them."""
    sets = dict(guard.sets)
    used = [n for n in dict.fromkeys(["home", "pwd", *_REFS.findall(word)]) if n in sets]
    if not used:
        return [guard]
    out = []
    for combo in islice(product(*(sets[n] for n in used)), _MAX_READINGS + 1):
        names = dict(guard.names)
        names.update((n, v) for n, v in zip(used, combo, strict=True) if v is not None)
        out.append(replace(guard, names=tuple(names.items())))
    if len(out) > _MAX_READINGS:
        many = Unsure(f"{word}, set to more values in the text than the tripwire checks")
        out[-1] = replace(guard, names=(*guard.names, *((n, many) for n in used)))
    return out


def assigned(guard: Guard, raw: Mapping[str, Sequence[Value]]) -> Guard:
    """`guard` knowing what the text sets each name to: `raw` holds the words assigned (as
    written, evaluated here against each other, `a=~; b=$a`) or Unsure (read from input)."""
    if not raw:
        return guard
    sets: dict[str, list[Value | None]] = {k: list(v) for k, v in guard.sets}
    for name in raw:
        sets.setdefault(name, [None])
    work = 0
    for _ in range(4):  # a value built from another's settles in a few rounds
        now = replace(guard, sets=tuple((k, tuple(v)) for k, v in sets.items()))
        changed = False
        for name, words in raw.items():
            for w in words:
                have = sets[name]
                got_all = _values(w, now) if work < _MAX_WORK and len(sets) < _MAX_NAMES else []
                work += len(got_all) or _MAX_WORK
                if work > _MAX_WORK:  # a text that sets more than is checked in good time
                    got_all = [Unsure(f"${name}, among more names than the tripwire follows")]
                for got in got_all:
                    if got not in have and not any(isinstance(v, Unsure) for v in have):
                        have.append(got)  # once unsure, what else it may be does not matter
                        changed = True
                if len(sets[name]) > _MAX_VALUES:
                    sets[name] = [Unsure(f"${name}, set to more values than the tripwire reads")]
        if not changed:
            break
    else:
        for name in raw:  # still growing (`d+=x` in a loop): not a value it can tell
            sets[name].append(Unsure(f"${name}, built up in a loop the tripwire cannot follow"))
    return replace(guard, sets=tuple((k, tuple(v)) for k, v in sets.items()))


def _values(word: Value, guard: Guard) -> list[Value | None]:
    if isinstance(word, Unsure):
        return [word]
    out: list[Value | None] = []
    for g in readings(word, guard):
        try:
            out.append(expand_word(word, dict(g.names), g.fed))
        except Unsure as e:
            out.append(e)
    return out


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


def system(segs: Sequence[str]) -> bool:
    """/, a system folder, or a home under /home (or macOS's /Users); a glob counts when
    it may name one (`/u*`, `/h?me/*`)."""
    if len(segs) == 2 and any(fnmatchcase(root[1:], segs[0]) for root in _HOME_ROOTS):
        return True  # a name without a glob matches only itself
    return any(len(t) == len(segs) and all(map(fnmatchcase, t, segs)) for t in _SYSTEM_SEGS)


def _against(segs: Sequence[str], guard: Guard) -> str | None:
    """Which protected target `segs` is, or is an ancestor of (a glob may stand for a name)."""
    for target, what in guard.targets:
        tsegs = segments(target)
        if len(segs) <= len(tsegs) and all(map(fnmatchcase, tsegs, segs)):
            return f"{what} {target}" if len(segs) == len(tsegs) else f"{what} {target} is in it"
    return None


def protected(
    word: str, cwd: str | None, guard: Guard, follow: bool, systems: bool = False
) -> str | None:
    """What `word` destroys among the guard's targets (or, through a symlink or a glob, the
    system folders), said for a refusal; None when it stays clear of them. `follow`: the tool
    follows a symlink named last (chmod -R does, rm and mv do not — `x/` always does).
    `systems`: only whether it is a system folder once expanded (`${HOME%/*}`, /proc/1/root)."""
    for alt in braces(word):
        for g in readings(f"{alt} {cwd or ''}", guard):
            if (hit := _protected(alt, cwd, g, follow, systems)) is not None:
                return hit if alt == word else f"{word}: {hit}"
    return None


def inside(word: str, guard: Guard, whats: Sequence[str]) -> str | None:
    """The target of a kind in `whats` that `word` is in (or is), said for a refusal."""
    try:
        raw = expand(word, None, guard)
    except Unsure as e:
        return f"{word} ({e})"
    segs = segments(raw) if raw is not None else []
    for target, what in guard.targets:
        if what in whats and segs[: len(t := segments(target))] == t and segs:
            return f"{what} {target}"
    return None


def _protected(word: str, cwd: str | None, guard: Guard, follow: bool, systems: bool) -> str | None:
    try:
        raw = expand(word, cwd, guard)
    except Unsure as e:
        return f"{word} ({e})"
    if raw is None:
        return None
    segs = segments(raw)
    last = raw.rstrip("/").rsplit("/", 1)[-1]
    each: list[str] = []  # `dir/*/`: every entry, a symlink among them followed
    # `*`, `.*`, `*.*` take every entry (dotfiles too): `~/*` empties the folder, aimed at it
    if segs and "*" in last and set(last) <= _WILD:
        each = segs if raw.endswith("/") else []
        segs, raw, follow = segs[:-1], raw.rstrip("/")[: -len(last)], True
    if (hit := _against(segs, guard)) is not None:
        return f"{word} ({hit})"
    if systems:
        return f"{word} (a system folder, /{'/'.join(segs)})" if system(segs) else None
    if any(_GLOB.search(s) for s in segs):
        hit = _globbed(word, segs, "/" if raw.endswith("/") else "", guard, follow)
    else:
        hit = _through(word, raw, guard, follow)
    return hit if hit is not None or not each else _globbed(word, each, "/", guard, True)


def _globbed(word: str, segs: Sequence[str], tail: str, guard: Guard, follow: bool) -> str | None:
    """What a glob destroys, expanded against the disk as bash will (None: read lexically)."""
    if guard.glob is None:
        return None
    found = guard.glob("/" + "/".join(segs))
    if found is None:
        return f"{word} (a glob over more paths than the tripwire checks)"
    for path in found:
        msegs = segments(path)
        hit = _against(msegs, guard) or ("a system folder" if system(msegs) else None)
        if hit is not None:
            return f"{word} (the glob takes {path}: {hit})"
        if (hit := _through(word, path + tail, guard, follow)) is not None:
            return hit
    return None


def _through(word: str, raw: str, guard: Guard, follow: bool) -> str | None:
    """What `raw` destroys through a symlink on its way, resolved on disk."""
    if guard.resolve is None:
        return None
    real = guard.resolve(raw, follow or raw.endswith("/"))
    rsegs = segments(real)
    if rsegs == segments(raw):
        return None  # no symlink on the way: the spelling said it all
    if (hit := _against(rsegs, guard)) is None and system(rsegs):
        hit = "a system folder"
    return None if hit is None else f"{word} (through a symlink, {real}: {hit})"
