"""The tripwire's protected targets for one check, read from the world once: the home, the
data dir, the looop checkout, the repos workers were started on (`worktrees/*.json`), and the
symlink resolution and glob expansion a path needs — the I/O the pure shellguard leaves to
its caller."""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterable
from fnmatch import fnmatchcase
from pathlib import Path

from looop.act.shellguard.targets import Guard
from looop.core.context import Ctx
from looop.home import store
from looop.home.errors import LooopError

_MAX_LINKS = 40  # as the kernel: a longer chain (or a loop) stops resolving
_MAX_RECORDS = 4096  # worktree records read for their repo: a bound, not a count we expect
_MAX_GLOB = 4096  # folder entries one glob may look at; a glob needing more is refused
_GLOB = re.compile(r"[*?[]")


def _checkout() -> list[str]:
    """Where this looop runs from: its package folder, and the checkout's top when it runs
    from a source tree (src/looop beside a pyproject.toml)."""
    pkg = Path(__file__).resolve().parent.parent
    out = [str(pkg)]
    if pkg.parent.name == "src" and (pkg.parent.parent / "pyproject.toml").is_file():
        out.append(str(pkg.parent.parent))
    return out


def _repos(ctx: Ctx) -> list[str]:
    """The main repos of workers' worktrees (a clone lives in the checkouts, guarded whole),
    a worker of several repos' others too (worktrees/<id>.parts/)."""
    out: list[str] = []
    try:
        found = [*ctx.paths.worktrees.glob("*.json"), *ctx.paths.worktrees.glob("*.parts/*.json")]
        records = sorted(found)[:_MAX_RECORDS]
    except OSError:
        return out
    for rec in records:
        try:
            raw = store.read_json_object(rec)
        except (LooopError, OSError):  # a broken record guards nothing more; the move goes on
            continue
        repo = raw.get("repo") if raw is not None else None
        if isinstance(repo, str) and repo.startswith("/") and not (raw or {}).get("origin"):
            out.append(repo)
    return out


def outside(ctx: Ctx, paths: Iterable[str]) -> str | None:
    """The first of `paths` (absolute) that lies, its symlinks resolved, outside the home, the
    data dir and the workers' repos; None when every one lies within."""
    home = ctx.env.get("HOME") or ""
    roots = [os.path.realpath(r) for r in (home, str(ctx.paths.data), *_repos(ctx)) if r[:1] == "/"]
    for p in paths:
        real = os.path.realpath(p)
        if not any(posixpath.commonpath([real, r]) == r for r in roots):
            return p
    return None


def _entry(folder: str, name: str) -> str:
    """`name` as it is spelled on disk in `folder` (the words the tripwire reads are
    lower-cased); `name` itself when nothing there matches."""
    if os.path.lexists(posixpath.join(folder, name)):
        return name
    try:
        found = sorted(e for e in os.listdir(folder) if e.lower() == name)
    except OSError:
        return name
    return found[0] if found else name


def resolve(path: str, follow: bool) -> str:
    """The real path of an absolute, lower-cased `path`, symlinks resolved in order (so
    `link/..` is the link target's parent, as the kernel reads it); the last name is followed
    only when `follow` or the path ends in `/`. Lower-cased; never raises."""
    todo = path.split("/")
    todo.reverse()
    out = "/"
    links = 0
    while todo:
        seg = todo.pop()
        if seg in ("", "."):
            continue
        if seg == "..":
            out = posixpath.dirname(out)
            continue
        nxt = posixpath.join(out, _entry(out, seg))
        if (todo or follow) and links < _MAX_LINKS and os.path.islink(nxt):
            links += 1
            try:
                target = os.readlink(nxt)
            except OSError:
                out = nxt
                continue
            if target.startswith("/"):
                out = "/"
            todo.extend(reversed(target.split("/")))
            continue
        out = nxt
    return out.lower()


def glob_paths(pattern: str) -> list[str] | None:
    """What an absolute, lower-cased glob matches on disk now, lower-cased — names in any
    case (the words were lower-cased) and dotfiles too, so a superset of bash's; None when it
    would look at more than _MAX_GLOB entries. Never raises."""
    found = ["/"]
    seen = 0
    for seg in pattern.split("/"):
        if not seg:
            continue
        if not _GLOB.search(seg):
            found = [posixpath.join(base, _entry(base, seg)) for base in found]
            continue
        nxt: list[str] = []
        for base in found:
            try:
                names = os.listdir(base)
            except OSError:
                continue
            seen += len(names)
            if seen > _MAX_GLOB:
                return None
            nxt += [posixpath.join(base, n) for n in names if fnmatchcase(n.lower(), seg)]
            if seg.startswith("."):  # only a glob starting with a dot takes `.` and `..`
                nxt += [posixpath.join(base, d) for d in (".", "..") if fnmatchcase(d, seg)]
        found = nxt
    return [p.lower() for p in found if os.path.lexists(p)]


def _forms(path: str) -> Iterable[str]:
    """A target as spelled (normalised) and as it really is (symlinks resolved)."""
    plain = posixpath.normpath(path).lower()
    yield "/" + plain.lstrip("/")  # normpath keeps a leading `//`
    yield resolve(plain, True)


def guard_for(ctx: Ctx, cwd: str | None = None, repos: Iterable[str] = ()) -> Guard:
    """What a command run in `cwd` (default: the data dir, where run_shell, verify and sensors
    run) must not destroy; `repos`: more repos to guard (a worker's, before its record)."""
    home = ctx.env.get("HOME") or None
    data = str(ctx.paths.data)
    where = cwd if cwd is not None else data
    wanted: list[tuple[str, str]] = []
    if home is not None and home.startswith("/"):
        wanted.append((home, "your home"))
    wanted.append((data, "the data dir"))
    wanted.append((str(ctx.paths.work), "the workers' checkouts and rooms"))
    wanted += [(p, "the looop checkout") for p in _checkout()]
    wanted += [(r, "a worker's repo") for r in [*_repos(ctx), *repos] if r.startswith("/")]
    targets: dict[str, str] = {}
    for path, what in wanted:
        for form in _forms(path):
            targets.setdefault(form, what)
    names = {"pwd": where, "looop_data_dir": data} | ({"home": home} if home else {})
    return Guard(
        targets=tuple(targets.items()),
        cwd=where.lower(),
        names=tuple((k, v.lower()) for k, v in names.items()),
        resolve=resolve,
        glob=glob_paths,
        spellings=tuple(dict.fromkeys(f for p, _ in wanted for f in (p, os.path.realpath(p)))),
    )
