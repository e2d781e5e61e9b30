"""The run_shell tripwire: refuse the few commands that are almost always an accident.

A tripwire, not a sandbox. The command is read the way a careful human skims it (words,
quotes, separators, the first word of each command), not the way bash runs it, so anything
built at run time (variables, aliases, scripts on disk) walks past it. Pure functions, no I/O.

Our own small scanner instead of `shlex`: shlex cannot tell a quoted `|` from a pipe, reads a
newline as plain space, and takes a `#` inside a word for a comment.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

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

_SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh"})
_DOWNLOADERS = frozenset({"curl", "wget"})
_POWER = frozenset({"shutdown", "reboot", "halt", "poweroff"})
_DD_OK = frozenset({"null", "zero", "stdout", "stderr"})
_DISKS = ("sd", "nvme", "disk", "rdisk", "mmcblk", "hd", "vd", "xvd")
_MAIN = frozenset({"main", "master"})

# Words that may stand before the command proper; each with the options that take an argument
# and how many plain arguments it eats before the command (timeout's duration).
_KEYWORDS = frozenset({"if", "then", "else", "elif", "do", "while", "until", "!", "{"})
_WRAPPERS: dict[str, tuple[frozenset[str], int]] = {
    "env": (frozenset({"-u", "--unset", "-c", "--chdir", "-s", "--split-string"}), 0),
    "command": (frozenset(), 0),
    "builtin": (frozenset(), 0),
    "exec": (frozenset({"-a"}), 0),
    "nohup": (frozenset(), 0),
    "time": (frozenset({"-f", "--format", "-o", "--output"}), 0),
    "nice": (frozenset({"-n", "--adjustment"}), 0),
    "timeout": (frozenset({"-s", "--signal", "-k", "--kill-after"}), 1),
    "setsid": (frozenset(), 0),
    "stdbuf": (frozenset({"-i", "-o", "-e"}), 0),
    "ionice": (frozenset({"-c", "-n", "--class", "--classdata"}), 0),
    "xargs": (frozenset({"-i", "-n", "-p", "-l", "-d", "-a", "-e", "-s"}), 0),
    "busybox": (frozenset(), 0),
}
_GIT_TAKES = frozenset({"-c", "--git-dir", "--work-tree", "--namespace", "--config-env"})

_ASSIGNMENT = re.compile(r"[a-z_][a-z0-9_]*\+?=.*", re.S)
_ROOT = re.compile(r"/[/.*]*")
_HOME = re.compile(r"(?:~|\$home|\$\{home\})(?:/[/.*]*)?")
_MAX_DEPTH = 4  # `bash -c "sh -c '…'"` nesting we still look into
_SHOW_CHARS = 80

DEFAULT_FIX = "do it by hand, or set shell_policy"


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
    host: str | None = None  # inside `$(…)`, `<(…)` or backticks: the command that uses it
    words: list[str] = field(default_factory=list)
    redirects: list[tuple[str, str]] = field(default_factory=list)
    bodies: list[str] = field(default_factory=list)


def _base(word: str) -> str:
    return word.rsplit("/", 1)[-1] if "/" in word.rstrip("/") else word


def _command_at(words: Sequence[str]) -> int | None:
    """Index of the command word, past assignments, keywords and wrappers (env, nohup, …)."""
    i = 0
    while i < len(words):
        base = _base(words[i])
        if _ASSIGNMENT.fullmatch(words[i]) or base in _KEYWORDS:
            i += 1
            continue
        spec = _WRAPPERS.get(base)
        if spec is None:
            return i
        takes, plain = spec
        i += 1
        while i < len(words) and words[i].startswith("-") and len(words[i]) > 1:
            opt = words[i]
            i += 1
            if opt == "--":
                break
            if base == "command" and "v" in opt[1:]:
                return None  # `command -v x` only looks x up
            if opt in takes:
                i += 1
        i += plain
    return None


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


def _show(words: Sequence[str]) -> str:
    text = " ".join(" ".join(words).split())
    return text if len(text) <= _SHOW_CHARS else text[: _SHOW_CHARS - 1] + "…"


def _is_disk(path: str) -> bool:
    return path.startswith("/dev/") and path[5:].startswith(_DISKS)


def _rm_target(args: Sequence[str]) -> str | None:
    """The root/home operand of an `rm` that is both recursive and forced."""
    recursive = force = False
    targets: list[str] = []
    options = True
    for a in args:
        if options and a == "--":
            options = False
        elif options and a.startswith("--"):
            name = a[2:]
            recursive |= bool(name) and "recursive".startswith(name)
            force |= bool(name) and "force".startswith(name)
        elif options and a.startswith("-") and len(a) > 1:
            recursive |= "r" in a
            force |= "f" in a
        else:
            targets.append(a)
    if not (recursive and force):
        return None
    return next((t for t in targets if _ROOT.fullmatch(t) or _HOME.fullmatch(t)), None)


def _git_push(args: Sequence[str]) -> str | None:
    """Which way `git … push …` rewrites or removes main/master, if it does."""
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 2 if args[i] in _GIT_TAKES else 1
    if i >= len(args) or args[i] != "push":
        return None
    force = every = delete = False
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
        if dst not in _MAIN:
            continue
        if delete or (colon and not src):
            return f"deleting {dst} on the remote"
        if force or plus:
            return f"a force push to {dst}"
    if force and every:
        return "a force push of every branch (main/master included)"
    return None


def _scripts(name: str, args: Sequence[str], c: _Cmd) -> list[str]:
    """Command text a shell or `eval` will run: `-c` scripts, here-strings, here-documents."""
    if name == "eval":
        return [" ".join(args)]
    if name not in _SHELLS:
        return []
    inline = False
    i = 0
    while i < len(args) and args[i][:1] in "-+" and len(args[i]) > 1:
        a = args[i]
        i += 1
        if a == "--":
            break
        if a in ("-o", "+o", "--rcfile", "--init-file"):
            i += 1
        elif not a.startswith("--") and "c" in a[1:]:
            inline = True
    out = [args[i]] if inline and i < len(args) else []
    out += [target for op, target in c.redirects if op == "<<<"]
    if not inline:
        out += c.bodies
    return out


def _command_rule(c: _Cmd, depth: int) -> str | None:
    for op, target in c.redirects:
        if op in _WRITES and _is_disk(target):
            return f"a redirect onto a disk device: `{op} {target}`"
    at = _command_at(c.words)
    if at is None:
        return None
    name, args, shown = _base(c.words[at]), c.words[at + 1 :], _show(c.words[at:])
    if name in ("sudo", "doas"):
        return f"{name} (running as another user): `{shown}`"
    if name.startswith("mkfs"):
        return f"mkfs (formatting a filesystem): `{shown}`"
    if name in _POWER:
        return f"{name} (stopping the machine): `{shown}`"
    if name == "systemctl" and any(a in ("reboot", "poweroff", "halt") for a in args):
        return f"systemctl power action (stopping the machine): `{shown}`"
    if name == "rm" and (aimed := _rm_target(args)) is not None:
        return f"rm -rf aimed at {aimed}: `{shown}`"
    if name == "git" and (what := _git_push(args)) is not None:
        return f"{what}: `{shown}`"
    if name == "dd":
        for a in args:
            if a.startswith("of=/dev/") and a[8:] not in _DD_OK:
                return f"dd onto a device: `{shown}`"
    if name == "tee" and any(_is_disk(a) for a in args):
        return f"tee onto a disk device: `{shown}`"
    if name in _DOWNLOADERS and c.host is not None:
        if c.host == "$":
            return f"a download run as a command: `$({shown})`"
        if c.host in _SHELLS or c.host in ("eval", "source", "."):
            return f"a download run by {c.host}: `{shown}`"
    for script in _scripts(name, args, c):
        why = _check(script, depth + 1)
        if why is not None:
            return why
    return None


def _check(cmd: str, depth: int) -> str | None:
    if depth > _MAX_DEPTH:
        return None
    download: _Cmd | None = None
    for c in _commands(tokenise(cmd)):
        why = _command_rule(c, depth)
        if why is not None:
            return why
        if c.before in _BREAKS:
            download = None
        at = _command_at(c.words)
        name = _base(c.words[at]) if at is not None else ""
        if download is not None and c.before in ("|", "|&") and name in _SHELLS:
            assert at is not None
            piped = f"{_show(download.words)} | {_show(c.words[at:])}"
            return f"a download piped into a shell: `{piped}`"
        if name in _DOWNLOADERS:
            download = c
    return None


def tripwire(cmd: str) -> str | None:
    """The built-in rule `cmd` trips, quoting the offending part; None when it passes."""
    return _check(cmd, 0)


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


def refusal(why: str, fix: str = DEFAULT_FIX) -> str:
    """The one-line error a refused run_shell fails with."""
    return (
        f"run_shell refused by the shell tripwire: {why}; "
        f"this is a guard against accidents, not a sandbox — {fix}"
    )
