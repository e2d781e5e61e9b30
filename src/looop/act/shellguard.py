"""The shell tripwire: refuse the few commands that are almost always an accident.

A tripwire, not a sandbox. The text is parsed the way bash would parse it (tree-sitter-bash),
and every command anywhere in it is checked: pipelines, lists, compound commands, function
bodies, subshells, `$(…)`/backticks/`<(…)` (inside double quotes too), here-strings, and the
scripts handed to `sh -c`, `eval`, `env -S`, `watch`, `trap`, `find -exec`, … up to a depth
bound. Words are read after quote removal and `$'…'` decoding, so `"su"do` and `$'\\x73udo'`
are still sudo. Anything built at run time (variables, aliases, scripts on disk) walks past it.

Fail closed: every text is also read by our older small scanner (words, quotes, separators,
here-docs), and either reading tripping refuses it — bash the parser rejects or misreads is
still checked. Text over MAX_CHARS, or scripts nested deeper than _MAX_DEPTH, are refused
unread; the guard itself never raises. Pure functions, no I/O; the parser loads lazily.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from tree_sitter import Node

MAX_CHARS = 256 * 1024  # a decision is at most this big; longer text is refused unread

# Longest first: at each position the scanner takes the longest operator that fits.
_OPS = (
    *("&>>", ";;&", "<<<", "<<-"),
    *("&&", "||", ";;", ";&", "|&", ">>", ">|", "&>", ">&", "<<", "<&", "<>"),
    *(";", "&", "|", "(", ")", "<", ">", "`", "\n"),
)
_OP_CHARS = frozenset(";&|()<>`\n")
_REDIRECTS = frozenset({">", ">>", ">|", "&>", "&>>", ">&", "<", "<<", "<<-", "<<<", "<&", "<>"})
_WRITES = frozenset({">", ">>", ">|", "&>", "&>>", ">&", "<>"})
# What ends a pipeline: a download before one of these no longer feeds what follows.
_BREAKS = frozenset({"&&", "||", ";", ";;", ";&", ";;&", "&", "\n"})

_SHELLS = frozenset(
    {"sh", "bash", "rbash", "zsh", "dash", "ksh", "mksh", "pdksh", "oksh", "yash", "ash", "hush"}
    | {"posh", "fish", "tcsh", "csh"}
)
_INTERPRETERS = re.compile(
    r"(?:python[\d.]*|pypy[\d.]*|perl[\d.]*|ruby[\d.]*|node|nodejs|deno|bun|php[\d.]*|lua[\d.]*"
    r"|luajit|tclsh[\d.]*|pwsh|powershell|osascript)"
)
_CODE_FLAGS = ("-c", "-e", "-m", "-r", "-p", "-f", "--eval", "--print", "--command")
_SOURCES = frozenset({"source", "."})
_STDIN = frozenset({"-", "/dev/stdin", "/proc/self/fd/0", "/dev/fd/0"})
_DOWNLOADERS = frozenset(
    {"curl", "wget", "wget2", "fetch", "http", "https", "xh", "xhs", "curlie", "lwp-request"}
    | {"nc", "ncat", "netcat", "socat"}
)
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
_MAIN = frozenset({"main", "master"})
_DELETERS = frozenset({"rm", "shred", "unlink", "rmdir", "chmod", "chown", "chgrp", "truncate"})
_RECURSIVE_TOOLS = frozenset({"rm", "chmod", "chown", "chgrp", "chattr", "setfacl"})
# Paths whose recursive delete or chmod/chown wrecks the machine or a home (lower-cased).
_SYSTEM_DIRS = frozenset(
    {"/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/mnt"}
    | {"/media", "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/usr", "/var"}
    | {"/snap", "/nix", "/system", "/library", "/applications", "/users", "/private"}
    | {"/usr/bin", "/usr/sbin", "/usr/lib", "/usr/lib64", "/usr/local", "/usr/share"}
    | {"/usr/include", "/usr/local/bin", "/usr/local/lib", "/var/lib", "/private/etc"}
)

# Words that may stand before the command proper; each with the options that take an argument
# and how many plain arguments it eats before the command (timeout's duration).
_KEYWORDS = frozenset({"if", "then", "else", "elif", "do", "while", "until", "!", "{", "("})
_WRAPPERS: dict[str, tuple[frozenset[str], int]] = {
    "env": (frozenset({"-u", "--unset", "-c", "--chdir"}), 0),
    "command": (frozenset(), 0),
    "builtin": (frozenset(), 0),
    "exec": (frozenset({"-a"}), 0),
    "nohup": (frozenset(), 0),
    "time": (frozenset({"-f", "--format", "-o", "--output"}), 0),
    "nice": (frozenset({"-n", "--adjustment"}), 0),
    "timeout": (frozenset({"-s", "--signal", "-k", "--kill-after"}), 1),
    "setsid": (frozenset(), 0),
    "stdbuf": (frozenset({"-i", "-o", "-e"}), 0),
    "ionice": (frozenset({"-c", "-n", "-p", "-t", "--class", "--classdata"}), 0),
    "chrt": (frozenset(), 1),
    "taskset": (frozenset(), 1),
    "flock": (frozenset({"-w", "--timeout", "--conflict-exit-code"}), 1),
    "chroot": (frozenset({"--userspec", "--groups"}), 1),
    "unshare": (frozenset(), 0),
    "nsenter": (frozenset({"-t", "--target"}), 0),
    "xargs": (frozenset({"-i", "-n", "-p", "-l", "-d", "-a", "-e", "-s"}), 0),
    "busybox": (frozenset(), 0),
    "toybox": (frozenset(), 0),
    "coproc": (frozenset(), 0),
    "unbuffer": (frozenset(), 0),
    "caffeinate": (frozenset({"-t", "-w"}), 0),
    "watch": (frozenset({"-n", "--interval", "-d", "--differences", "-q"}), 0),
    "systemd-run": (frozenset({"-p", "--property", "-u", "--unit", "-e", "--setenv"}), 0),
}
_GIT_TAKES = frozenset({"-c", "--git-dir", "--work-tree", "--namespace", "--config-env"})

_ASSIGNMENT = re.compile(r"[a-z_][a-z0-9_]*\+?=.*", re.S)
# ~, ~user, $HOME, ${HOME}, ${HOME:?…}; then only slashes, dots and globs
_HOME = re.compile(r"(?:~[a-z0-9_.-]*|\$home|\$\{home(?::?[-?=+][^}]*)?\})(?:/[/.*]*)?")
_MAX_DEPTH = 4  # `bash -c "sh -c '…'"` nesting we still look into; deeper is refused
_SHOW_CHARS = 80

DEFAULT_FIX = "do it by hand, or set shell_policy"


# ---------------------------------------------------------------- the older scanner


class Tok(NamedTuple):
    text: str
    kind: str  # "word", "op", or "body" (a here-document's lines)
    glued: bool = False  # an op with no space before it (`$(`, `<(`, `2>`)


class _Unbalanced(ValueError):
    pass


class _Scanner:
    """Words and operators of one lower-cased command line; here-document bodies kept apart."""

    def __init__(self, text: str, quotes: bool) -> None:
        self.s = text
        self.quotes = quotes
        self.i = 0
        self.out: list[Tok] = []
        self.word: list[str] = []
        self.in_word = False
        self.gap = True
        self.heredocs: list[tuple[str, bool]] = []  # (delimiter, strip leading tabs)
        self.delim_tabs: bool | None = None  # set while the next word is a heredoc delimiter
        self.unterminated = False  # one heredoc ran to the end: read everything after as commands

    def end_word(self) -> None:
        if not self.in_word:
            return
        text = "".join(self.word)
        self.word.clear()
        self.in_word = False
        self.gap = False
        self.out.append(Tok(text, "word"))
        if self.delim_tabs is not None:
            self.heredocs.append((text, self.delim_tabs))
            self.delim_tabs = None

    def quoted(self, q: str) -> None:
        s, i, n = self.s, self.i + 1, len(self.s)
        while True:
            if i >= n:
                raise _Unbalanced
            c = s[i]
            if c == q:
                break
            if q == '"' and c == "\\" and i + 1 < n and s[i + 1] in '"\\$`':
                self.word.append(s[i + 1])
                i += 2
                continue
            self.word.append(c)
            i += 1
        self.i = i + 1
        self.in_word = True

    def skip_bodies(self) -> None:
        """After the newline that ends a `<<` line: its bodies become body tokens."""
        s, pos = self.s, self.i
        bodies: list[str] = []
        for delim, tabs in self.heredocs:
            start = pos
            while True:
                if pos >= len(s):
                    # Unterminated: read the rest as commands rather than skip it, and stop
                    # looking for bodies (another search to the end would make this quadratic).
                    self.heredocs.clear()
                    self.unterminated = True
                    return
                j = s.find("\n", pos)
                end = len(s) if j < 0 else j
                line_start, line = pos, s[pos:end]
                pos = end + 1
                if (line.lstrip("\t") if tabs else line) == delim:
                    bodies.append(s[start:line_start])
                    break
        self.heredocs.clear()
        self.out.extend(Tok(b, "body") for b in bodies)
        self.i = min(pos, len(s))

    def run(self) -> list[Tok]:
        s, n = self.s, len(self.s)
        while self.i < n:
            c = s[self.i]
            if c == "\\":
                self.word.append(s[self.i + 1 : self.i + 2])
                self.in_word = True
                self.i += 2
            elif c in "'\"":
                if self.quotes:
                    self.quoted(c)
                else:
                    self.in_word = True
                    self.i += 1
            elif c in " \t\r":
                self.end_word()
                self.gap = True
                self.i += 1
            elif c == "#" and not self.in_word:
                j = s.find("\n", self.i)
                self.i = n if j < 0 else j
                self.gap = True
            elif c in _OP_CHARS:
                self.end_word()
                op = next(o for o in _OPS if s.startswith(o, self.i))
                self.i += len(op)
                self.out.append(Tok(op, "op", glued=not self.gap))
                self.gap = False
                heredoc = op in ("<<", "<<-") and not self.unterminated
                self.delim_tabs = op == "<<-" if heredoc else None
                if op == "\n" and self.heredocs:
                    self.skip_bodies()
            else:
                self.word.append(c)
                self.in_word = True
                self.i += 1
        self.end_word()
        return self.out


def tokenise(cmd: str) -> list[Tok]:
    """Lower-cased tokens; an unbalanced quote falls back to ignoring quotes, never to passing."""
    text = cmd.lower().replace("\\\n", "")
    try:
        return _Scanner(text, quotes=True).run()
    except _Unbalanced:
        return _Scanner(text, quotes=False).run()


@dataclass
class _Cmd:
    """One simple command: its words, its redirects, and what feeds on its output."""

    before: str = ""  # the operator in front of it ("" at the start)
    host: str | None = None  # inside `$(…)`/`<(…)`/backticks: what runs it as code ("$": the
    # substitution is itself the command word)
    words: list[str] = field(default_factory=list)
    redirects: list[tuple[str, str]] = field(default_factory=list)
    bodies: list[str] = field(default_factory=list)
    cwd: str | None = None  # where an earlier `cd` in the same text went, when we can tell


def _base(word: str) -> str:
    return word.rsplit("/", 1)[-1] if "/" in word.rstrip("/") else word


def _unwrap(words: Sequence[str]) -> tuple[int | None, list[str]]:
    """Index of the command word, past assignments, keywords and wrappers (env, nohup, …),
    and the scripts a wrapper runs from a string (`env -S`, `watch`, `flock -c`)."""
    i = 0
    while i < len(words):
        base = _base(words[i])
        if _ASSIGNMENT.fullmatch(words[i]) or base in _KEYWORDS:
            i += 1
            continue
        spec = _WRAPPERS.get(base)
        if spec is None:
            return i, []
        takes, plain = spec
        i += 1
        if base == "coproc" and i + 1 < len(words) and words[i + 1] in ("{", "("):
            i += 1  # `coproc NAME { …; }`: NAME is not a command
        while i < len(words) and words[i].startswith("-") and len(words[i]) > 1:
            opt = words[i]
            i += 1
            if opt == "--":
                break
            if base == "command" and "v" in opt[1:]:
                return None, []  # `command -v x` only looks x up
            if base == "env" and opt.startswith(("-s", "--split-string")):
                # `env -S 'a b'` splits the string into the command and its arguments
                value = opt.partition("=")[2] if opt.startswith("--") else opt[2:]
                if not value and i < len(words):
                    value, i = words[i], i + 1
                return None, [" ".join([value, *words[i:]])]
            if opt in takes:
                i += 1
        i += plain
        if base == "flock" and i < len(words) and words[i] in ("-c", "--command"):
            return None, list(words[i + 1 : i + 2])
        if base == "watch" and i < len(words):
            return None, [" ".join(words[i:])]  # watch hands its words to `sh -c`
    return None, []


def _command_at(words: Sequence[str]) -> int | None:
    return _unwrap(words)[0]


def _commands(toks: Sequence[Tok]) -> list[_Cmd]:
    """Simple commands in the order they end; substitutions are read as nested levels."""
    done: list[_Cmd] = []
    stack: list[tuple[_Cmd, str | None, str]] = []  # (enclosing command, its host, closer)
    awaiting_body: list[_Cmd] = []
    cur, host = _Cmd(), None

    def flush(c: _Cmd) -> None:
        if c.words or c.redirects:
            done.append(c)

    i = 0
    while i < len(toks):
        t = toks[i]
        i += 1
        if t.kind == "body":
            if awaiting_body:
                awaiting_body.pop(0).bodies.append(t.text)
        elif t.kind == "word":
            cur.words.append(t.text)
        elif t.text in _REDIRECTS:
            prev = toks[i - 2] if i >= 2 else None
            fd = t.glued and prev is not None and prev.kind == "word" and prev.text.isdigit()
            if fd and cur.words and prev is not None and cur.words[-1] == prev.text:
                cur.words.pop()  # `2>`: a file descriptor, not an argument
            target = ""
            if i < len(toks) and toks[i].kind == "word":
                target = toks[i].text
                i += 1
            cur.redirects.append((t.text, target))
            if t.text in ("<<", "<<-"):
                awaiting_body.append(cur)
        elif t.text == "(" and i < len(toks) and toks[i].text == ")" and toks[i].kind == "op":
            flush(cur)  # `name() { …; }`: a function body follows
            cur = _Cmd(before="(", host=host)
            i += 1
        elif t.text == "(" or (t.text == "`" and not (stack and stack[-1][2] == "`")):
            prev = toks[i - 2] if i >= 2 else None
            inner = host
            if t.text == "`" or (
                t.glued
                and prev is not None
                and (
                    (prev.kind == "word" and prev.text.endswith("$"))
                    or (prev.kind == "op" and prev.text in ("<", ">"))
                )
            ):
                at = _command_at(cur.words)
                if at is not None:
                    inner = _base(cur.words[at])
                    inner = (
                        inner if inner in _SHELLS or inner in _SOURCES or inner == "eval" else None
                    )
                elif not cur.words:
                    inner = "$"  # the substitution is itself the command word
                else:
                    inner = None
            stack.append((cur, host, ")" if t.text == "(" else "`"))
            cur, host = _Cmd(before=t.text, host=inner), inner
        elif t.text in (")", "`"):
            flush(cur)
            if stack and stack[-1][2] == t.text:
                cur, host, _ = stack.pop()
            else:
                cur = _Cmd(before=t.text, host=host)
        else:
            flush(cur)
            cur = _Cmd(before=t.text, host=host)
    flush(cur)
    while stack:
        flush(stack.pop()[0])
    return done


# ---------------------------------------------------------------- the deny rules


def _show(words: Sequence[str]) -> str:
    text = " ".join(" ".join(words).split())
    return text if len(text) <= _SHOW_CHARS else text[: _SHOW_CHARS - 1] + "…"


def _device(path: str) -> bool:
    """A path whose overwrite destroys a disk (or, for /proc/sysrq-trigger, stops the box)."""
    if path == "/proc/sysrq-trigger":
        return True
    if not path.startswith("/dev/") or path[5:] in _DEV_OK:
        return False
    return path[5:].startswith(_DISKS + _DISKS_MORE)


def _critical(path: str, cwd: str | None = None) -> str | None:
    """`path` (joined to `cwd` when relative) if it is /, a home, or a system directory
    (after `..`, `//`, `/*`): `cd / && rm -rf *` aims at /*."""
    if cwd is not None and not path.startswith(("/", "~", "$")):
        path = f"{cwd.rstrip('/')}/{path}"
    if _HOME.fullmatch(path):
        return path
    if not path.startswith("/"):
        return None
    parts: list[str] = []
    for seg in path.split("/"):
        if seg == "..":
            if parts:
                parts.pop()
        elif seg not in ("", ".", "*"):
            parts.append(seg)
    return path if "/" + "/".join(parts) in _SYSTEM_DIRS else None


def _split_opts(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """(options, operands), options ending at `--`."""
    opts: list[str] = []
    operands: list[str] = []
    options = True
    for a in args:
        if options and a == "--":
            options = False
        elif options and a.startswith("-") and len(a) > 1:
            opts.append(a)
        else:
            operands.append(a)
    return opts, operands


def _recursive(opts: Sequence[str]) -> bool:
    return any(
        ("recursive".startswith(o[2:]) and len(o) > 2) if o.startswith("--") else "r" in o[1:]
        for o in opts
    )


def _find_starts(args: Sequence[str], cwd: str | None) -> tuple[str | None, int]:
    """(the first start path that is critical, where the expression begins)."""
    i = 0
    while i < len(args) and args[i][:2] in ("-h", "-l", "-p", "-o", "-d") and len(args[i]) <= 3:
        i += 2 if args[i] == "-d" else 1
    aimed: str | None = None
    while i < len(args) and not args[i].startswith("-") and args[i] not in ("(", "!", ","):
        aimed = aimed or _critical(args[i], cwd)
        i += 1
    return aimed, i


def _find(args: Sequence[str], cwd: str | None) -> tuple[str | None, list[list[str]]]:
    """(a critical start path if the expression deletes, the -exec commands)."""
    aimed, i = _find_starts(args, cwd)
    execs: list[list[str]] = []
    expr = args[i:]
    j = 0
    while j < len(expr):
        a = expr[j]
        j += 1
        if a in ("-exec", "-execdir", "-ok", "-okdir"):
            sub: list[str] = []
            while j < len(expr) and expr[j] not in (";", "+"):
                sub.append(expr[j])
                j += 1
            j += 1
            execs.append(sub)
    deletes = "-delete" in expr or any(
        (at := _command_at(sub)) is not None and _base(sub[at]) in _DELETERS for sub in execs
    )
    return (aimed if deletes else None), execs


def _git_push(args: Sequence[str]) -> str | None:
    """Which way `git … push …` rewrites or removes main/master (or may), if it does."""
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 2 if args[i] in _GIT_TAKES else 1
    if i >= len(args) or args[i] != "push":
        return None
    force = every = delete = tags = False
    positional: list[str] = []
    rest, j, options = args[i + 1 :], 0, True
    while j < len(rest):
        a = rest[j]
        j += 1
        if options and a == "--":
            options = False
        elif options and a.startswith("--"):
            name = a[2:].split("=", 1)[0]
            if name in ("force", "force-with-lease"):
                force = True
            elif name == "mirror":
                force = every = True
            elif name in ("all", "branches"):
                every = True
            elif name == "delete":
                delete = True
            elif name == "tags":
                tags = True
            elif name in ("repo", "push-option", "receive-pack", "exec") and "=" not in a:
                j += 1
        elif options and a.startswith("-") and len(a) > 1:
            force |= "f" in a
            delete |= "d" in a
            if a.endswith("o"):
                j += 1  # -o <push option>
        else:
            positional.append(a)
    for ref in positional[1:]:  # the first is the remote
        plus = ref.startswith("+")
        spec = ref[1:] if plus else ref
        src, colon, dst = spec.partition(":")
        dst = (dst if colon else src).removeprefix("refs/heads/")
        if not colon and dst in ("head", "@") and (force or plus):
            return "a force push of HEAD (the current branch may be main)"
        if dst == "*" and (force or plus):  # a refs/heads/* pattern: main included
            return "a force push of every branch (main/master included)"
        if dst not in _MAIN:
            continue
        if delete or (colon and not src):
            return f"deleting {dst} on the remote"
        if force or plus:
            return f"a force push to {dst}"
    if force and every:
        return "a force push of every branch (main/master included)"
    if force and len(positional) <= 1 and not tags:
        return "a force push with no refspec (it may hit the default branch)"
    return None


def _kills_everything(args: Sequence[str]) -> bool:
    """`kill -9 -1` (every process you own) or `kill 1` (init)."""
    i = 0
    if args and args[0].startswith("-") and args[0] != "--":
        i = 2 if args[0] in ("-s", "-n") else 1
    if i < len(args) and args[i] == "--":
        i += 1
    return any(a in ("-1", "1") for a in args[i:])


def _reads_code(name: str, args: Sequence[str]) -> bool:
    """Does this command run whatever arrives on its stdin as code?"""
    if name in _SHELLS:
        return True
    if name in _SOURCES:
        return bool(args) and args[0] in _STDIN
    if not _INTERPRETERS.fullmatch(name):
        return False
    for a in args:
        if a in _STDIN:
            return True
        if a.startswith("-") and len(a) > 1:
            if a.startswith(_CODE_FLAGS):
                return False
            continue
        return False  # a script file: stdin is data
    return True


def _scripts(name: str, args: Sequence[str], c: _Cmd) -> list[str]:
    """Command text this command will run: `-c` scripts, eval, trap, here-strings/-documents."""
    if name == "eval":
        return [" ".join(args)]
    if name == "trap":
        _, operands = _split_opts(args)
        return operands[:1]
    if name == "script":
        return [args[k + 1] for k, a in enumerate(args[:-1]) if a in ("-c", "--command")]
    if name not in _SHELLS:
        return []
    inline = False
    out: list[str] = []
    i = 0
    while i < len(args) and args[i][:1] in "-+" and len(args[i]) > 1:
        a = args[i]
        i += 1
        if a == "--":
            break
        if a.startswith("--command="):
            out.append(a.partition("=")[2])
        elif a in ("-o", "+o", "--rcfile", "--init-file"):
            i += 1
        elif a == "--command" or (not a.startswith("--") and "c" in a[1:]):
            inline = True
    if inline and i < len(args):
        out.append(args[i])
    out += [target for op, target in c.redirects if op == "<<<"]
    if not (inline or out):
        out += c.bodies
    return out


def _disk_rule(name: str, args: Sequence[str], shown: str) -> str | None:
    """Formatting, wiping or overwriting a disk."""
    if name.startswith(_FS_MAKERS):
        return f"{name} (formatting a filesystem): `{shown}`"
    if name in ("wipefs", "blkdiscard") and not any(a in ("-n", "--no-act") for a in args):
        return f"{name} (wiping a disk): `{shown}`"
    if (
        name in _PARTITIONERS
        and any(_device(a) for a in args)
        and not any(a in _READ_ONLY_FLAGS for a in args)
    ):
        return f"{name} (rewriting a partition table): `{shown}`"
    if (
        (name == "cryptsetup" and any(a in ("luksformat", "erase", "lukserase") for a in args))
        or (name == "nvme" and args[:1] in (["format"], ["sanitize"]))
        or (name == "diskutil" and args[:1] and args[0].startswith(("erase", "zero", "secure")))
        or (name == "hdparm" and any(a.startswith(("--security-erase", "--trim")) for a in args))
        or (name == "sg_format" and any(a.startswith("--format") for a in args))
        or (name == "badblocks" and any(a.startswith("-") and "w" in a for a in args))
    ):
        return f"{name} (wiping a disk): `{shown}`"
    if name == "dd":
        for a in args:
            if a.startswith("of=/dev/") and a[8:] not in _DEV_OK:
                return f"dd onto a device: `{shown}`"
    if name == "shred" and any(a.startswith("/dev/") and a[5:] not in _DEV_OK for a in args):
        return f"shred of a device: `{shown}`"
    if name in ("tee", "cp", "install", "pv") and any(_device(a) for a in args):
        return f"{name} onto a disk device: `{shown}`"
    return None


def _power_rule(name: str, args: Sequence[str], shown: str) -> str | None:
    """Stopping or suspending the machine, or killing every process."""
    if name in _POWER:
        return f"{name} (stopping the machine): `{shown}`"
    if name in ("systemctl", "loginctl") and any(
        a in _SYSTEMCTL_POWER or a.removesuffix(".target") in _SYSTEMCTL_POWER for a in args
    ):
        return f"{name} power action (stopping the machine): `{shown}`"
    if name in ("init", "telinit") and args[:1] in (["0"], ["6"]):
        return f"{name} {args[0]} (stopping the machine): `{shown}`"
    if name == "killall5" or (name == "kill" and _kills_everything(args)):
        return f"kill of every process (or init): `{shown}`"
    return None


def _tree_rule(name: str, args: Sequence[str], shown: str, cwd: str | None) -> str | None:
    """Deleting, moving away or re-permissioning /, a home or a system directory."""

    def aimed(paths: Sequence[str]) -> str | None:
        return next((p for a in paths if (p := _critical(a, cwd)) is not None), None)

    opts, operands = _split_opts(args)
    if name in _RECURSIVE_TOOLS and _recursive(opts) and (at := aimed(operands)) is not None:
        verb = "rm -rf (recursive delete)" if name == "rm" else f"recursive {name}"
        return f"{verb} aimed at {at}: `{shown}`"
    if name == "mv" and (at := aimed(operands[:-1])) is not None:
        return f"mv moving away {at}: `{shown}`"
    deletes = any(o.startswith("--delete") for o in opts)
    if name == "rsync" and deletes and (at := aimed(operands[-1:])) is not None:
        return f"rsync --delete into {at}: `{shown}`"
    if name == "find" and (at := _find(args, cwd)[0]) is not None:
        return f"find deleting under {at}: `{shown}`"
    return None


def _rule(name: str, args: Sequence[str], shown: str, cwd: str | None) -> str | None:
    """The deny rule one command (already unwrapped) trips, if any."""
    if name in _PRIVILEGE:
        return f"{name} (running as another user): `{shown}`"
    if name == "git" and (what := _git_push(args)) is not None:
        return f"{what}: `{shown}`"
    return (
        _disk_rule(name, args, shown)
        or _power_rule(name, args, shown)
        or _tree_rule(name, args, shown, cwd)
    )


def _command_rule(c: _Cmd, depth: int) -> str | None:
    for op, target in c.redirects:
        if op in _WRITES and _device(target):
            return f"a redirect onto a disk device: `{op} {target}`"
    at, nested = _unwrap(c.words)
    for script in nested:
        if (why := _check(script, depth + 1)) is not None:
            return why
    if at is None:
        return None
    name, args, shown = _base(c.words[at]), c.words[at + 1 :], _show(c.words[at:])
    if (why := _rule(name, args, shown, c.cwd)) is not None:
        return why
    if name in _DOWNLOADERS and c.host is not None:
        if c.host == "$":
            return f"a download run as a command: `$({shown})`"
        return f"a download run by {c.host}: `{shown}`"
    if name == "find":
        for sub in _find(args, c.cwd)[1]:
            if (
                why := _command_rule(_Cmd(host=c.host, words=sub, cwd=c.cwd), depth + 1)
            ) is not None:
                return why
    for script in _scripts(name, args, c):
        if (why := _check(script, depth + 1)) is not None:
            return why
    return None


# What flows down a pipe into what: (producer role, consumer role, how the refusal names it)
_PIPE_RULES = (
    ("download", "runs", "a download piped into a shell"),
    ("lists", "deletes", "a listing of a system or home directory piped into a delete"),
)


def _roles(c: _Cmd) -> dict[str, str]:
    """The pipe roles `c` plays (see _PIPE_RULES), each with the text shown for it."""
    at = _command_at(c.words)
    if at is None:
        return {}
    name, args = _base(c.words[at]), c.words[at + 1 :]
    roles: dict[str, str] = {}
    if name in _DOWNLOADERS:
        roles["download"] = _show(c.words)
    if _reads_code(name, args):
        roles["runs"] = _show(c.words[at:])
    if name == "find" and _find_starts(args, c.cwd)[0] is not None:
        roles["lists"] = _show(c.words[at:])
    if name in _DELETERS and any(_base(w) == "xargs" for w in c.words[:at]):
        roles["deletes"] = _show(c.words)
    return roles


def _after_cd(c: _Cmd, cwd: str | None) -> str | None:
    """Where the shell is after `c`, as far as the text tells (None: unknown)."""
    at = _command_at(c.words)
    if at is None or _base(c.words[at]) not in ("cd", "pushd"):
        return cwd
    _, operands = _split_opts(c.words[at + 1 :])
    if not operands:
        return "~"
    target = operands[0]
    if target.startswith(("/", "~", "$")):
        return target
    return None if cwd is None or target == "-" else f"{cwd.rstrip('/')}/{target}"


def _scan_check(cmd: str, depth: int) -> str | None:
    """The older reading: our own scanner, run on every text beside the parser."""
    upstream: dict[str, str] = {}  # roles played earlier in the current pipeline
    cwd: str | None = None
    for c in _commands(tokenise(cmd)):
        c.cwd = cwd
        cwd = _after_cd(c, cwd)
        why = _command_rule(c, depth)
        if why is not None:
            return why
        if c.before in _BREAKS:
            upstream = {}
        roles = _roles(c)
        for producer, consumer, label in _PIPE_RULES:
            if producer in upstream and c.before in ("|", "|&") and consumer in roles:
                return f"{label}: `{upstream[producer]} | {roles[consumer]}`"
        upstream = roles | upstream
    return None


# ---------------------------------------------------------------- the parsed reading

_ESCAPE = re.compile(r"\\(.)", re.S)
_DQ_ESCAPE = re.compile(r'\\([$`"\\\n])')
_ANSI_C = re.compile(
    r"\\(x[0-9a-f]{1,2}|u[0-9a-f]{1,4}|U[0-9a-f]{1,8}|[0-7]{1,3}|c.?|.)", re.S | re.I
)
_ANSI_SIMPLE = {"a": "\a", "b": "\b", "e": "\x1b", "E": "\x1b", "f": "\f", "n": "\n", "r": "\r"}
_ANSI_SIMPLE |= {"t": "\t", "v": "\v"}
_BACKTICKS = re.compile(r"`([^`]*)`")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_SUBST = frozenset({"command_substitution", "process_substitution"})
_REDIRECT_NODES = frozenset({"file_redirect", "heredoc_redirect", "herestring_redirect"})


def _ansi_c(body: str) -> str:
    """What bash makes of the inside of `$'…'`."""

    def one(m: re.Match[str]) -> str:
        e = m.group(1)
        if e[0] in "xuU" and len(e) > 1:
            code = int(e[1:], 16)
        elif e[0] in "01234567":
            code = int(e, 8)
        elif e[0] == "c":
            return chr(ord(e[1]) & 0x1F) if len(e) > 1 else ""
        else:
            return _ANSI_SIMPLE.get(e, e)
        return chr(code) if code <= 0x10FFFF else ""

    return _ANSI_C.sub(one, body)


def _text(n: Node) -> str:
    return (n.text or b"").decode("utf-8", "replace")


def _word(n: Node, subs: list[Node]) -> str:
    """The word a shell would pass after quote removal; substitutions kept as written."""
    t = n.type
    if t in _SUBST:
        subs.append(n)
        return _text(n)
    if t == "word":
        return _ESCAPE.sub(r"\1", _text(n).replace("\\\n", ""))
    if t == "raw_string":
        s = _text(n)
        return s[1:-1] if len(s) >= 2 and s.endswith("'") else s[1:]
    if t == "ansi_c_string":
        s = _text(n)
        return _ansi_c(s[2:-1] if len(s) >= 3 and s.endswith("'") else s[2:])
    if t in ("string", "translated_string"):
        out: list[str] = []
        for ch in n.named_children:
            if ch.type == "string_content":
                out.append(_DQ_ESCAPE.sub(r"\1", _text(ch)))
            else:
                out.append(_word(ch, subs))
        return "".join(out)
    if t == "concatenation":
        return "".join(_word(ch, subs) for ch in n.children)
    return _text(n)  # expansions, arithmetic, numbers: as written


def _from_command(n: Node, outer: Sequence[Node], host_of: dict[int, str | None]) -> _Cmd:
    """One `command` node (plus the `outer` redirects that reach it) as words, here-strings
    and here-documents; notes the host of each substitution in its arguments (the command
    that will run their output as code)."""
    parts = [*n.children, *outer]
    c = _Cmd()
    words: list[str] = []
    name_subs: list[Node] = []
    stdin_subs: list[Node] = []  # `bash < <(curl x)`, `python3 <<< "$(curl x)"`
    arg_subs: list[tuple[int, Node]] = []  # (index of the word it sits in, substitution)
    for p in parts:
        t = p.type
        if t == "command_name":
            words += [_word(ch, name_subs) for ch in p.named_children[:1]]
        elif t == "herestring_redirect":
            c.redirects += [("<<<", _word(ch, stdin_subs).lower()) for ch in p.named_children[-1:]]
        elif t == "heredoc_redirect":
            c.bodies += [_text(ch).lower() for ch in p.named_children if ch.type == "heredoc_body"]
        elif t == "file_redirect":
            stdin_subs += [ch for ch in p.named_children if ch.type in _SUBST]
        elif p.is_named and t not in ("variable_assignment", "comment"):
            found: list[Node] = []
            words.append(_word(p, found))
            arg_subs += [(len(words) - 1, s) for s in found]
    c.words = [w.lower() for w in words]
    at = _command_at(c.words)
    host_of.update((s.id, "$") for s in name_subs)
    if at is None:
        host_of.update((s.id, None if c.words else "$") for _, s in arg_subs)
        return c
    name, args = _base(c.words[at]), c.words[at + 1 :]
    host_of.update((s.id, name if _reads_code(name, args) else None) for s in stdin_subs)
    for k, s in arg_subs:
        host_of[s.id] = "$" if k == at else (name if _code_arg(name, args, k - at - 1) else None)
    return c


def _code_arg(name: str, args: Sequence[str], k: int) -> bool:
    """Is args[k] run as code by `name`? Shells, eval and source: any argument (the script or
    what it is handed); an interpreter: its script operand or the value of -c/-e/…"""
    if name in _SHELLS or name in _SOURCES or name == "eval":
        return True
    if not _INTERPRETERS.fullmatch(name):
        return False
    if k > 0 and args[k - 1] in _CODE_FLAGS:
        return True
    first = next((i for i, a in enumerate(args) if not a.startswith("-") or a == "-"), None)
    return first == k


def _redirect_rule(n: Node) -> str | None:
    op = next((ch.type for ch in n.children if ch.type in _REDIRECTS), "")
    targets = [ch for ch in n.named_children if ch.type != "file_descriptor"][-1:]
    if op in _WRITES and targets and _device(path := _word(targets[0], []).lower()):
        return f"a redirect onto a disk device: `{op} {path}`"
    return None


def _heredoc_backticks(n: Node, depth: int) -> str | None:
    """An unquoted here-document runs the backticks in its body (the parser leaves them)."""
    start = next((_text(ch) for ch in n.children if ch.type == "heredoc_start"), "'")
    if any(q in start for q in "'\"\\"):
        return None
    for body in n.children:
        if body.type == "heredoc_body":
            for m in _BACKTICKS.finditer(_text(body)):
                if (why := _check(m.group(1), depth + 1)) is not None:
                    return why
    return None


def _pipelines(order: Sequence[tuple[Node, _Cmd | None]]) -> str | None:
    """A producer anywhere in one stage of a pipeline and its consumer in a later one (a
    download then a shell, however grouped: `{ curl x; } | bash`, `curl x | (bash)`)."""
    roles: dict[int, dict[str, str]] = {}  # node id -> roles played anywhere inside it
    found: str | None = None
    for n, c in reversed(order):  # children before their parents
        mine = _roles(c) if c is not None else {}
        for ch in n.children:
            mine = roles.get(ch.id, {}) | mine
        if n.type == "pipeline":
            upstream: dict[str, str] = {}
            for ch in n.named_children:
                here = roles.get(ch.id, {})
                for producer, consumer, label in _PIPE_RULES:
                    if producer in upstream and consumer in here:
                        found = f"{label}: `{upstream[producer]} | {here[consumer]}`"
                upstream = here | upstream
        if mine:
            roles[n.id] = mine
    return found


def _tree_check(text: str, depth: int) -> str | None:
    """The rule the parsed text trips, if any."""
    import tree_sitter_bash
    from tree_sitter import Language, Parser

    # ASCII only: tree-sitter-bash 0.25 can crash the process on some non-ASCII input
    # (tree-sitter-bash#337). No shell syntax is non-ASCII, so each such character becomes
    # one letter; the scanner still reads the original text.
    ascii_text = _NON_ASCII.sub("x", text)
    tree = Parser(Language(tree_sitter_bash.language())).parse(ascii_text.encode("ascii"))
    host_of: dict[int, str | None] = {}
    order: list[tuple[Node, _Cmd | None]] = []
    # (node, host of the substitution it sits in, redirects from outside that reach it)
    stack: list[tuple[Node, str | None, Sequence[Node]]] = [(tree.root_node, None, ())]
    cwd: str | None = None  # commands come in text order; subshell scope is ignored
    while stack:  # pre-order, by hand: nesting depth is the input's to choose
        n, host, outer = stack.pop()
        children = n.children
        c: _Cmd | None = None
        why: str | None = None
        if n.type in _SUBST:
            host = host_of.get(n.id)  # None: its output is not an argument of any command
        elif n.type == "command":
            c = _from_command(n, outer, host_of)
            c.host, c.cwd = host, cwd
            cwd = _after_cd(c, cwd)
            why = _command_rule(c, depth)
        elif n.type == "file_redirect":
            why = _redirect_rule(n)
        elif n.type == "heredoc_redirect":
            why = _heredoc_backticks(n, depth)
        if why is not None:
            return why
        order.append((n, c))
        inner = _inner_redirects(n, children, outer)
        stack.extend((ch, host, inner.get(ch.id, ())) for ch in reversed(children))
    return _pipelines(order)


def _inner_redirects(
    n: Node, children: Sequence[Node], outer: Sequence[Node]
) -> dict[int, Sequence[Node]]:
    """Which child the redirects on `n` (and those reaching it) go to. The parser hangs
    `a && b < x` and `{ b; } < x` on the whole statement, while bash feeds `x` to `b`: a
    list, pipeline or group passes them to its last part."""
    if n.type == "redirected_statement":
        mine = [ch for ch in children if ch.type in _REDIRECT_NODES]
        body = n.child_by_field_name("body")
        return {} if body is None else {body.id: [*mine, *outer]}
    if outer and n.type in ("list", "pipeline", "compound_statement", "subshell"):
        last = [ch for ch in children if ch.is_named and ch.type != "comment"][-1:]
        return {last[0].id: outer} if last else {}
    return {}


def _check(cmd: str, depth: int) -> str | None:
    if depth > _MAX_DEPTH:
        return (
            f"shell code nested over {_MAX_DEPTH} levels deep (sh -c, eval, …): too deep to check"
        )
    try:
        why = _tree_check(cmd, depth)
    except ImportError:  # the parser is missing: the scanner alone still guards
        why = None
    # The scanner reads every text too: the parser can misread without flagging an error
    # (a line starting with `\`), and either reading tripping is enough to refuse.
    return why if why is not None else _scan_check(cmd, depth)


# ---------------------------------------------------------------- the policy


def tripwire(cmd: str) -> str | None:
    """The built-in rule `cmd` trips, quoting the offending part; None when it passes."""
    if len(cmd) > MAX_CHARS:
        return f"{len(cmd)} characters of shell, over the {MAX_CHARS} the tripwire reads"
    try:
        return _check(cmd, 0)
    except RecursionError:
        return "shell code nested too deeply to check"
    except Exception as e:  # fail closed: text the guard cannot read is not let through
        return f"shell code the tripwire could not read ({type(e).__name__})"


def foreign_interpreter(script: str) -> str | None:
    """The interpreter a script's #! line names when it is not a shell (python, node, …)."""
    if not script.startswith("#!"):
        return None
    words = script[2:].split("\n", 1)[0].lower().split()
    if words and _base(words[0]) == "env":
        words = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
    if not words:
        return None
    name = _base(words[0])
    return None if name in _SHELLS or name in ("busybox", "toybox") else name


def verdict(
    cmd: str,
    *,
    builtin: bool = True,
    deny: Sequence[re.Pattern[str]] = (),
    allow: Sequence[re.Pattern[str]] = (),
) -> str | None:
    """Why `cmd` is refused under a policy, or None. An allow match wins over everything."""
    if any(p.search(cmd) for p in allow):
        return None
    for p in deny:
        if p.search(cmd):
            return f"the shell_policy deny pattern `{' '.join(p.pattern.split())}` matches"
    return tripwire(cmd) if builtin else None


def refusal(why: str, fix: str = DEFAULT_FIX, what: str = "run_shell") -> str:
    """The one-line error a refused command (run_shell, a worker's command, …) fails with."""
    return (
        f"{what} refused by the shell tripwire: {why}; "
        f"this is a guard against accidents, not a sandbox — {fix}"
    )
