"""What the tripwire cannot read: a script whose #! names anything but a plain shell (python,
node, perl, zsh, an interpreter outside the system folders, `env -S` spellings it cannot
follow), code handed to another language inside shell text (`python3 -c`, `node -e`, a
here-document fed to an interpreter, a `perl -x "$0"` polyglot, awk's `system()`, sed's `e`:
foreign.py), and shell built at run time (`$x -rf ~`, `eval "$y"`, `. <(…)`). The tripwire
reads bash only; the executor asks here first, and a decision's sensor, verify or run_shell
that cannot be read is refused unless it will run sandboxed. Pure, never raises (an
unreadable text is a reason)."""

from __future__ import annotations

from collections.abc import Sequence

from looop.act.shellguard.command import _base, _Cmd, _scripts, _unwrap
from looop.act.shellguard.foreign import foreign_code, run_time_path
from looop.act.shellguard.parsed import _tree_check, bounded
from looop.act.shellguard.rules import _find
from looop.act.shellguard.tables import _SOURCES
from looop.act.shellguard.targets import NO_GUARD, Guard

# Shells whose language is the one the tripwire parses (zsh, fish and csh are not: zsh's
# glob qualifiers alone run code).
READABLE = frozenset(
    {"sh", "bash", "rbash", "dash", "ash", "ksh", "mksh", "pdksh", "oksh", "yash", "posh", "hush"}
)
# Where a #! interpreter may live: a folder nothing looop starts can write to.
SYSTEM_DIRS = ("/bin/", "/usr/bin/", "/usr/local/bin/", "/sbin/", "/usr/sbin/")
_MULTICALL = ("busybox", "toybox")


def unreadable_script(script: str) -> str | None:
    """Why the tripwire cannot read this sensor script (its #! line, or foreign code inside
    its shell), or None when it is shell the tripwire reads throughout. A file without #!
    runs under bash (sensors/ runs it so)."""
    if script.startswith("#!"):
        why = _shebang(script[2:].split("\n", 1)[0])
        if why is not None:
            return why
    return unreadable_line(script)


def unreadable_line(cmd: str) -> str | None:
    """Why shell text hands code the tripwire cannot read to another language, or None."""
    return bounded(cmd, _walk)


def _walk(cmd: str, depth: int, guard: Guard = NO_GUARD) -> str | None:
    return _tree_check(cmd, depth, guard, _unread, _walk, pipes=False)


def _unread(c: _Cmd, depth: int, guard: Guard) -> str | None:
    """What in one command hands code to a language, or to a time, the tripwire cannot read."""
    at, nested = _unwrap(c.words)
    if at is not None:
        name, args = _base(c.words[at]), c.words[at + 1 :]
        if (why := _foreign_code(name, args) or _run_time(c.words[at], name, args)) is not None:
            return why
        subs = [sub for sub in _find(args, c.cwd)[1] if sub] if name == "find" else []
        for sub in subs:  # what -exec/-execdir/-ok run
            if (why := _foreign_code(_base(sub[0]), sub[1:])) is not None:
                return why
        nested += _scripts(name, args, c)
    if c.host == "$":  # `$(echo rm) -rf ~`: its output is the command
        return "a command named at run time (`$(…)`), which the tripwire does not read"
    if (why := _env_string(c.words)) is not None:
        return why
    return next((why for s in nested if (why := _walk(s, depth + 1)) is not None), None)


def _foreign_code(name: str, args: Sequence[str]) -> str | None:
    """Code in another language (foreign.py), through a multicall binary too."""
    if name in _MULTICALL and args and not args[0].startswith("-"):
        return _foreign_code(_base(args[0]), args[1:])
    return foreign_code(name, args)


def _run_time(word: str, name: str, args: Sequence[str]) -> str | None:
    """Shell built at run time: a command named by a variable or substitution (`$x -rf ~`),
    eval of one, a script sourced from a substitution, stdin or a descriptor."""
    if "$" in word and "$(" not in word and "`" not in word:  # `$(…)`: its command says
        return f"`{word}`: a command named at run time, which the tripwire does not read"
    if name == "eval" and any(ch in a for a in args for ch in "$`"):
        return "`eval` of text built at run time, which the tripwire does not read"
    if name in _SOURCES and (not args or run_time_path(args[0])):  # `. <(…)` reads as `. < (…)`
        return f"`{name}` of shell built at run time, which the tripwire does not read"
    return None


def _env_string(words: Sequence[str]) -> str | None:
    """`env -S` with `${…}`: env fills it in by its own rules, after the tripwire read it."""
    for k, w in enumerate(words[:-1]):
        if _base(w) == "env" and any(
            a.startswith(("-s", "--split-string")) and "${" in " ".join(words[k + 1 :])
            for a in words[k + 1 :]
        ):
            return "`env -S` filling in `${…}` by its own rules, which the tripwire does not read"
    return None


def _shebang(line: str) -> str | None:
    """Why the tripwire cannot read what this #! line runs, or None for a plain shell. As
    the kernel reads it: the interpreter up to a space or tab, the rest one argument; `env`
    and a multicall binary name the shell in that argument."""
    interp, _, rest = line.strip(" \t").replace("\t", " ").partition(" ")
    rest = rest.strip(" \t")
    shown = f"#!{line.strip()}"[:80]
    if not interp.startswith(SYSTEM_DIRS) or "/../" in interp or "/./" in interp:
        return f"`{shown}`: its interpreter is not in {', '.join(d[:-1] for d in SYSTEM_DIRS)}"
    words = rest.split()
    if _base(interp) == "env" and rest.startswith(("-S", "--split-string")):
        value = rest[2:] if rest.startswith("-S") else rest.partition("=")[2] or rest[14:]
        if any(ch in value for ch in "'\"\\$"):
            return f"`{shown}`: an env -S string with quotes or escapes it cannot follow"
        words = value.split()
        while words and ("=" in words[0] and not words[0].startswith("-")):
            words = words[1:]  # NAME=VALUE assignments
        words = words[1:] if words[:1] in (["-i"], ["--ignore-environment"], ["-"]) else words
    elif _base(interp) == "env" and (" " in rest or rest.startswith("-")):
        return f"`{shown}`: env options it cannot follow"
    if _base(interp) in ("env", *_MULTICALL) and words:
        interp, words = words[0], words[1:]
    elif _base(interp) == "env":
        return f"`{shown}`: env without a program"
    if "/" in interp and not interp.startswith(SYSTEM_DIRS):
        return f"`{shown}`: its interpreter is not in a system folder"
    if (name := _base(interp)) not in READABLE:
        return f"`{shown}`: {name} is not a shell the tripwire reads"
    return None if _shell_flags(words) else f"`{shown}`: shell options it cannot follow"


def _shell_flags(words: Sequence[str]) -> bool:
    """Flags only (`-e`, `-eu`, `+x`, `--posix`), none that takes a script or an rc file."""
    for w in words:
        if w in ("--posix", "--norc", "--noprofile", "--restricted", "--"):
            continue
        if len(w) < 2 or w[0] not in "-+" or w[1] == "-" or not w[1:].isalpha() or "c" in w:
            return False
    return True
