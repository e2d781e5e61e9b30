"""The deny rules: what one simple command (already unwrapped) trips, and the roles it plays
in a pipe (a download, a shell reading stdin, a listing, a delete)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import pairwise

from looop.act.shellguard import command, targets

_PRIVILEGE = frozenset(
    {"sudo", "doas", "pkexec", "su", "run0", "sudoedit", "runuser", "ksu", "dzdo", "pfexec"}
)
_POWER = frozenset(
    {"shutdown", "reboot", "halt", "poweroff", "pm-suspend", "pm-hibernate", "pm-suspend-hybrid"}
)
_SYSTEMCTL_POWER = frozenset(
    {"reboot", "poweroff", "halt", "kexec", "soft-reboot", "suspend", "hibernate", "hybrid-sleep"}
    | {"suspend-then-hibernate", "sleep", "rescue", "emergency"}
)
_FS_MAKERS = ("mkfs", "mke2fs", "mkswap", "mkdosfs", "mkntfs", "mkexfatfs", "mkudffs", "newfs")
_PARTITIONERS = frozenset({"fdisk", "sfdisk", "cfdisk", "gdisk", "sgdisk", "parted"})
_READ_ONLY_FLAGS = frozenset(
    {"-l", "--list", "-d", "--dump", "-p", "--print", "print", "-v", "--verify", "--help"}
    | {"-n", "--no-act", "--version"}
)
_DEV_OK = frozenset({"null", "zero", "stdout", "stderr", "tty", "fd/1", "fd/2", "full", "random"})
_DISKS = ("sd", "nvme", "disk", "rdisk", "mmcblk", "hd", "vd", "xvd", "mapper/", "dm-", "md")
_DISKS_MORE = ("nbd", "mtd", "root", "mem", "kmem", "port", "zvol/")
_DISK_PATHS = tuple(f"/dev/{d}" for d in _DISKS + _DISKS_MORE)  # none of them in _DEV_OK
_MAIN = frozenset({"main", "master"})
_DELETERS = frozenset({"rm", "shred", "unlink", "rmdir", "chmod", "chown", "chgrp", "truncate"})
_RECURSIVE_TOOLS = frozenset({"rm", "chmod", "chown", "chgrp", "chattr", "setfacl"})
# git subcommands that move the checked-out branch (in a worker's repo: landing by hand)
_GIT_MOVES = frozenset({"merge", "pull", "rebase", "cherry-pick", "am", "reset", "update-ref"})
_GIT_TAKES = frozenset({"-c", "--git-dir", "--work-tree", "--namespace", "--config-env"})
# ~, ~user, ~-, $HOME, ${HOME}, ${HOME…} (any operator), $OLDPWD; then only slashes, dots, globs
_HOME = re.compile(
    r"(?:~[a-z0-9_.-]*|\$home|\$\{home(?:[^a-z0-9_}][^}]*)?\}|\$oldpwd|\$\{oldpwd\})(?:/[/.*]*)?"
)
_SHOW_CHARS = 80

# chmod's mode operand (`755`, `u+x`, `go-w,a+r`), not a path (lower-cased: X is x)
_MODE = re.compile(r"[0-7]{1,4}|[ugoa]*[-+=][rwxst]*(?:,[ugoa]*[-+=][rwxst]*)*")


def _show(words: Sequence[str]) -> str:
    text = " ".join(" ".join(words).split())
    return text if len(text) <= _SHOW_CHARS else text[: _SHOW_CHARS - 1] + "…"


def _device(path: str) -> bool:
    """A path whose overwrite destroys a disk (or, for /proc/sysrq-trigger, stops the box)."""
    return path == "/proc/sysrq-trigger" or path.startswith(_DISK_PATHS)


def _critical(path: str, cwd: str | None = None) -> str | None:
    """`path` (joined to `cwd` when relative) if it is /, a home (~, $HOME, /home/NAME), or a
    system directory (after `..`, `//`, `/*`): `cd / && rm -rf *` aims at /*."""
    if cwd is not None and not path.startswith(("/", "~", "$")):
        path = f"{cwd.rstrip('/')}/{path}"
    if _HOME.fullmatch(path):
        return path
    segs = targets.segments("/".join(s for s in path.split("/") if s != "*"))
    return path if path.startswith("/") and targets.system(segs) else None


def _aimed(word: str, cwd: str | None, guard: targets.Guard, follow: bool = False) -> str | None:
    """`word` as a refusal names it, if it is a system folder or home (as spelled) or one of
    the guard's targets or their ancestors (as normalised); `follow` as in `protected`."""
    if (hit := targets.protected(word, cwd, guard, follow)) is not None:
        return hit
    for alt in targets.braces(word):
        if (at := _critical(alt, cwd)) is not None:
            return at if alt == word else f"{word}: {at}"
    return targets.protected(word, cwd, guard, follow, systems=True)


def _find_starts(
    args: Sequence[str], cwd: str | None, guard: targets.Guard
) -> tuple[str | None, int]:
    """(the first start path that is critical or protected, where the expression begins)."""
    i = 0
    follow = False  # -H / -L (lower-cased): a start path that is a symlink is followed
    while i < len(args) and args[i][:2] in ("-h", "-l", "-p", "-o", "-d") and len(args[i]) <= 3:
        follow |= args[i] in ("-h", "-l")
        i += 2 if args[i] == "-d" else 1
    aimed: str | None = None
    first = i
    while i < len(args) and not args[i].startswith("-") and args[i] not in ("(", "!", ","):
        aimed = aimed or _aimed(args[i], cwd, guard, follow)
        i += 1
    if i == first:  # no start path: find starts at `.`
        aimed = _aimed(".", cwd, guard, follow)
    return aimed, i


def _find(
    args: Sequence[str], cwd: str | None, guard: targets.Guard = targets.NO_GUARD
) -> tuple[str | None, list[list[str]]]:
    """(a critical or protected start path if the expression deletes, the -exec commands)."""
    aimed, i = _find_starts(args, cwd, guard)
    expr = list(args[i:])
    execs: list[list[str]] = []
    j = 0
    while j < len(expr):  # what each -exec/-execdir/-ok/-okdir runs, up to its `;` or `+`
        j += 1
        if expr[j - 1] in ("-exec", "-execdir", "-ok", "-okdir"):
            end = next((k for k in range(j, len(expr)) if expr[k] in (";", "+")), len(expr))
            execs.append(expr[j:end])
            j = end + 1
    deletes = "-delete" in expr or any(
        (at := command._unwrap(sub)[0]) is not None and command._base(sub[at]) in _DELETERS
        for sub in execs
    )
    return (aimed if deletes else None), execs


def _git_push(rest: Sequence[str]) -> str | None:
    """Which way `git push REST` rewrites or removes main/master (or may), if it does: what it
    was asked for (force, every, delete, tags), then its refspecs (after the remote)."""
    takes = ("--repo", "--push-option", "--receive-pack", "--exec")
    opts, positional = command._split_opts(rest, "o", takes)
    f = command.flags(opts, _PUSH)  # `--mir` is --mirror; -f, -d in a cluster too
    force = bool({"--force", "--force-with-lease", "--mirror", "-f"} & f)
    every = bool({"--all", "--branches", "--mirror"} & f)
    delete = bool({"--delete", "-d"} & f)
    for ref in positional[1:]:  # the first is the remote
        plus = ref.startswith("+")
        src, colon, dst = ref.removeprefix("+").partition(":")
        dst = (dst if colon else src).removeprefix("refs/heads/")
        if (force or plus) and (dst == "*" or (not colon and dst in ("head", "@"))):
            every = dst == "*"  # a refs/heads/* pattern: main included
            return _EVERY if every else "a force push of HEAD (the current branch may be main)"
        if dst not in _MAIN:
            continue
        if delete or (colon and not src):
            return f"deleting {dst} on the remote"
        return f"a force push to {dst}" if force or plus else f"a push to {dst}"
    if force and every:
        return _EVERY
    if force and len(positional) <= 1 and "--tags" not in f:
        return "a force push with no refspec (it may hit the default branch)"
    return None


_EVERY = "a force push of every branch (main/master included)"
_PUSH = ("--force", "--force-with-lease", "--mirror", "--all", "--branches", "--delete", "--tags")


def _kills_everything(args: Sequence[str]) -> bool:
    """`kill -9 -1` (every process you own) or `kill 1` (init)."""
    i = 0 if args[:1] in ([], ["--"]) or args[0][:1] != "-" else 1 + (args[0] in ("-s", "-n"))
    i += args[i : i + 1] == ["--"]
    return any(a in ("-1", "1") for a in args[i:])


def _disk_rule(name: str, args: Sequence[str]) -> str | None:
    """Formatting, wiping or overwriting a disk."""
    if name.startswith(_FS_MAKERS):
        return f"{name} (formatting a filesystem)"
    if name in ("wipefs", "blkdiscard") and not any(a in ("-n", "--no-act") for a in args):
        return f"{name} (wiping a disk)"
    if name in _PARTITIONERS and not _READ_ONLY_FLAGS & set(args) and any(_device(a) for a in args):
        return f"{name} (rewriting a partition table)"
    if (
        (name == "cryptsetup" and any(a in ("luksformat", "erase", "lukserase") for a in args))
        or (name == "nvme" and args[:1] in (["format"], ["sanitize"]))
        or (name == "diskutil" and args[:1] and args[0].startswith(("erase", "zero", "secure")))
        or (name == "hdparm" and any(a.startswith(("--security-erase", "--trim")) for a in args))
        or (name == "sg_format" and any(command.long_opts(a, ["--format"]) for a in args))
        or (name == "badblocks" and any(a.startswith("-") and "w" in a for a in args))
    ):
        return f"{name} (wiping a disk)"
    if name == "dd" and any(a.startswith("of=/dev/") and a[8:] not in _DEV_OK for a in args):
        return "dd onto a device"
    if name == "shred" and any(a.startswith("/dev/") and a[5:] not in _DEV_OK for a in args):
        return "shred of a device"
    if name in ("tee", "cp", "install", "pv") and any(_device(a) for a in args):
        return f"{name} onto a disk device"
    return None


def _power_rule(name: str, args: Sequence[str]) -> str | None:
    """Stopping or suspending the machine, or killing every process."""
    if name in _POWER:
        return f"{name} (stopping the machine)"
    if name in ("systemctl", "loginctl") and any(
        a in _SYSTEMCTL_POWER or a.removesuffix(".target") in _SYSTEMCTL_POWER for a in args
    ):
        return f"{name} power action (stopping the machine)"
    if name in ("init", "telinit") and args[:1] in (["0"], ["6"]):
        return f"{name} {args[0]} (stopping the machine)"
    if name == "killall5" or (name == "kill" and _kills_everything(args)):
        return "kill of every process (or init)"
    return None


def _recursive_targets(name: str, flags: set[str], operands: Sequence[str]) -> list[str]:
    """The path operands of a recursive tool: chmod's mode and chown's owner are not paths
    (`chown -R alice x` run in /home must not read as /home/alice)."""
    if name not in ("chmod", "chown", "chgrp") or "--reference" in flags:
        return list(operands)
    first = operands[0] if operands else ""
    if name == "chmod" and _MODE.fullmatch(first):
        return list(operands[1:])
    owner = "/" not in first and first not in (".", "..", "*") and not first.startswith(("~", "$"))
    return list(operands[1:] if name != "chmod" and owner else operands)


def _mv_sources(args: Sequence[str]) -> list[str]:
    """What `mv` may move away: every operand but the last; with -t DIR every operand (DIR
    too: lower-cased, -t and -T read alike, and -T moves the first onto the second)."""
    opts, sources = command._split_opts(args, "s", ("--target-directory", "--suffix"))
    every = bool({"--target-directory", "-t"} & command.flags(opts, ["--target-directory"]))
    return sources if every else sources[:-1]


def _git_at(args: Sequence[str], cwd: str | None) -> tuple[str, list[str], str | None]:
    """(git's subcommand, its arguments, where it runs: `-C DIR`s from `cwd`; None: unknown)."""
    here = cwd
    i = 0
    while i < len(args) and args[i].startswith("-"):
        if args[i] == "-c" and i + 1 < len(args) and "=" not in args[i + 1]:
            d = args[i + 1]  # -C DIR (lower-cased; `-c key=value` is config)
            here = d if d.startswith(("/", "~", "$")) or here is None else f"{here}/{d}"
        i += 2 if args[i] in _GIT_TAKES else 1
    return (args[i], list(args[i + 1 :]), here) if i < len(args) else ("", [], here)


_REPO = "a worker's repo"  # the guard's words for them (act/protected.py)
_WORKERS = ("the data dir", "the workers' checkouts and rooms")


def _git_rule(args: Sequence[str], cwd: str | None, guard: targets.Guard) -> str | None:
    """A force push or removal of main/master; landing by hand, a human's act: moving the
    branch of a worker's repo (your repository) by merging, pulling, rebasing, resetting, or
    pushing a worker's base from its repo or worktree; a forced `git clean` (untracked and
    ignored files gone) of a protected tree's top."""
    sub, rest, here = _git_at(args, cwd)
    pushed = _git_push(rest) if sub == "push" else None
    if pushed is not None and not pushed.startswith("a push to"):
        return f"{pushed}"
    if here is None:
        return None
    if sub in _GIT_MOVES and (repo := targets.inside(here, guard, [_REPO])) is not None:
        return f"git {sub} in {repo}, moving its branch is a human's act"
    if pushed is not None and (at := targets.inside(here, guard, [_REPO, *_WORKERS])) is not None:
        return f"{pushed} from {at} is a human's act"
    opts, specs = command._split_opts(rest, "e", ("--exclude",))  # -e PATTERN: kept, not a path
    f = command.flags(opts, ("--force", "--dry-run"))
    if sub != "clean" or not {"--force", "-f"} & f or {"--dry-run", "-n"} & f:
        return None
    paths = [s if s.startswith(("/", "~", "$")) else f"{here}/{s}" for s in specs] or [here]
    at = next((p for s in paths if (p := _aimed(s, None, guard, True)) is not None), None)
    return None if at is None else f"git clean (untracked files deleted) in {at}"


def _tree_rule(name: str, args: Sequence[str], cwd: str | None, guard: targets.Guard) -> str | None:
    """Deleting, moving away or re-permissioning /, a home, a system directory, or one of the
    guard's targets (the data dir, the checkout, a worker's repo) or an ancestor of one."""

    def aimed(paths: Sequence[str], follow: bool = False) -> str | None:
        return next((p for a in paths if (p := _aimed(a, cwd, guard, follow)) is not None), None)

    opts, operands = command._split_opts(args)
    f = command.flags(opts, ("--recursive", "--reference"))  # `--rec` too
    if name in _RECURSIVE_TOOLS and {"--recursive", "-r"} & f:
        # chmod -R follows a symlink named on the line, and so do chown/chgrp with -H/-L
        follow = name not in ("rm", "chown", "chgrp") or bool({"-h", "-l"} & f)
        if (at := aimed(_recursive_targets(name, f, operands), follow)) is not None:
            verb = "rm -rf (recursive delete)" if name == "rm" else f"recursive {name}"
            return f"{verb} aimed at {at}"
    if name == "mv" and (at := aimed(_mv_sources(args))) is not None:
        return f"mv moving away {at}"
    deletes = any(o.startswith("--delete") or o == "--del" for o in opts)
    if name == "rsync" and deletes and (at := aimed(operands[-1:], True)) is not None:
        return f"rsync --delete into {at}"
    if name == "find" and (at := _find(args, cwd, guard)[0]) is not None:
        return f"find deleting under {at}"
    return None


def _rule(name: str, args: Sequence[str], cwd: str | None, guard: targets.Guard) -> str | None:
    """The deny rule one command (already unwrapped) trips, if any (the caller quotes it)."""
    if name in _PRIVILEGE:
        return f"{name} (running as another user)"
    if name == "git":
        return _git_rule(args, cwd, guard)
    words = [a for a in args if not a.startswith("-")]
    if name == "looop" and "land" in words[:2]:  # `looop --data D land`
        return "landing a worker (`looop land`) is a human's act"
    if name == "gh" and ("pr", "merge") in pairwise(words):
        return "merging a pull request (`gh pr merge`) is a human's act"
    return _disk_rule(name, args) or _power_rule(name, args) or _tree_rule(name, args, cwd, guard)


# What flows down a pipe into what: (producer role, consumer role, how the refusal names it)
_PIPE_RULES = (
    ("download", "runs", "a download piped into a shell"),
    ("lists", "deletes", "a listing of a system or home directory piped into a delete"),
)


def _printed(name: str, args: Sequence[str]) -> str | None:
    """What echo or printf prints, as shell text (printf's format filled in)."""
    if name == "echo":
        return " ".join(args[1:] if args[:1] and re.fullmatch(r"-[nee]+", args[0]) else args)
    if name != "printf" or not args or args[0].startswith("-v"):
        return None
    rest = iter(args[1:])
    text = re.sub(r"%[-#0 +]*[0-9]*(?:\.[0-9]+)?[a-z]", lambda m: next(rest, ""), args[0])
    return command._ansi_c(" ".join([text, *rest]))


def _roles(c: command._Cmd, guard: targets.Guard) -> dict[str, str]:
    """The pipe roles `c` plays (see _PIPE_RULES), each with the text shown for it."""
    at = command._unwrap(c.words)[0]
    if at is None:
        return {}
    name, args = command._base(c.words[at]), c.words[at + 1 :]
    roles: dict[str, str] = {}
    if name in command._DOWNLOADERS:
        roles["download"] = _show(c.words)
    if (printed := _printed(name, args)) is not None:
        roles["prints"] = printed
    if command._reads_code(name, args):
        roles["runs"] = _show(c.words[at:])
    if name == "find" and _find_starts(args, c.cwd, guard)[0] is not None:
        roles["lists"] = _show(c.words[at:])
    if name in _DELETERS and any(command._base(w) == "xargs" for w in c.words[:at]):
        roles["deletes"] = _show(c.words)
    return roles


def _after_cd(c: command._Cmd, cwd: str | None) -> str | None:
    """Where the shell is after `c`, as far as the text tells (None: unknown)."""
    at = command._unwrap(c.words)[0]
    if at is None or command._base(c.words[at]) not in ("cd", "pushd"):
        return cwd
    target = (command._split_opts(c.words[at + 1 :])[1] or ["~"])[0]  # none: home
    if target.startswith(("/", "~", "$")):
        return target
    return None if cwd is None or target == "-" else f"{cwd.rstrip('/')}/{target}"
