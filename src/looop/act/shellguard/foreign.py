"""Code in another language inside shell text, as the tripwire decides whether it can read
it: an interpreter's inline program (`python3 -c`, `perl -e`), one read from stdin or a
here-document, a polyglot (`perl -x "$0"`, a script named at run time), awk that runs
commands (`system()`, pipes, `@load`), sed's `e`, and languages it does not read at all
(expect, gdb, vim, …). Plain awk (`awk '{print $1}'`) and a script file on disk
(`python3 check.py`) count as read: the first has no way to run a command, the second is a
documented gap (a script on disk). Also a #! naming anything but a plain shell, and shell
built at run time (`$x -rf ~`, `eval "$y"`, `. <(…)`): `unreadable_script`/`unreadable_line`,
which the executor asks first. Words arrive lower-cased. Pure; a reason or None."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from looop.act.shellguard import command
from looop.act.shellguard.parsed import _tree_check, bounded
from looop.act.shellguard.rules import _find
from looop.act.shellguard.targets import NO_GUARD, Guard

# The flags that hand an interpreter its program as an argument, by family, and the options
# that take a value of their own (the value is not the script operand).
_NODE_VALUED = "-r --require --import --loader --conditions"
_INLINE = [
    (tuple(names.split()), letters, tuple(longs.split()), frozenset(valued.split()))
    for names, letters, longs, valued in (
        ("python pypy", "ci", "", "-w"),
        ("node nodejs deno bun", "epi", "--eval --print --interactive", _NODE_VALUED),
        ("perl", "e", "", ""),
        ("ruby", "e", "", "-r -c"),
        ("php", "rbea", "", "-c -d -z"),
        ("lua luajit", "ei", "", "-l"),
        ("osascript", "e", "", "-l"),
        ("pwsh powershell", "c", "-command -encodedcommand -ec", ""),
    )
]
_NONE: tuple[tuple[str, ...], str, tuple[str, ...], frozenset[str]] = ((), "", (), frozenset())
# -x: perl and ruby skip to the script's own `#!…perl` line, python skips its first line —
# what a shell-and-perl polyglot sensor (`exec perl -x "$0"`) runs on
_POLYGLOT = ("perl", "ruby", "python", "pypy")
_VERSION = frozenset({"--version", "--help", "-h"})
_AWKS = frozenset({"awk", "gawk", "mawk", "nawk", "original-awk", "onetrue-awk", "goawk"})
_SEDS = frozenset({"sed", "gsed"})
# Languages the tripwire does not read in any form it can judge: any use but a version.
_OTHER = frozenset(
    {"expect", "wish", "rscript", "r", "julia", "guile", "racket", "sbcl", "clisp", "ecl"}
    | {"ghci", "runghc", "runhaskell", "swift", "jshell", "groovy", "scala", "kotlin"}
    | {"elixir", "iex", "erl", "escript", "gdb", "lldb", "vim", "nvim", "vi", "ex", "view"}
    | {"emacs", "ed", "red", "dc", "m4", "gnuplot", "octave", "npx", "bunx", "pnpx"}
)
_DEV_OK = re.compile(r"/dev/(?:stdout|stderr|stdin|null|fd/[0-9]+)")
_AWK_WORDS = frozenset({"print", "printf", "return", "in", "getline", "case", "do", "else"})
_AWK_RUNS = {"system": "running a command (system())", "|": "piping to or from a command"}
_AWK_RUNS |= {"@": "with an @ directive or indirect call"}
_AWK_RUNS |= dict.fromkeys('"/', "with a string or regex it cannot end")


def foreign_code(name: str, args: Sequence[str]) -> str | None:
    """Why `name args` runs code the tripwire does not read, or None."""
    if name in _AWKS:
        return _awk(name, args)
    if name in _SEDS:
        return _sed(args)
    if name in _OTHER and not (args and all(a in _VERSION for a in args)):
        return f"`{name}`: code in a language the tripwire does not read"
    if name in command._SHELLS - READABLE and (any(a.startswith("-") for a in args) or not args):
        return f"`{name}` code, which the tripwire does not read"
    if not command._INTERPRETERS.fullmatch(name):
        return None
    return _interpreter(name, args)


def run_time_path(path: str) -> bool:
    """A script operand that is not a file on disk the text names: stdin, a descriptor, a
    substitution or variable (`"$0"`: the sensor itself, as a polyglot), a URL."""
    return (
        path in ("-", "/dev/stdin")
        or path.startswith(("/dev/fd/", "/proc/"))
        or any(ch in path for ch in "$`<>(")
        or "://" in path
    )


def _interpreter(name: str, args: Sequence[str]) -> str | None:
    """Where an interpreter takes its program from: an argument or stdin (unread), a script
    named at run time (unread), or a script or module on disk (read)."""
    shown = "`" + " ".join([name, *args[:1]]) + "`"
    if args and all(a in _VERSION for a in args):
        return None
    if name.startswith(("perl", "node", "php")) and args == ["-v"]:
        return None
    if name.startswith(("deno", "bun")) and (
        args[:1] in (["eval"], ["repl"]) or any("://" in a or a == "-" for a in args)
    ):
        return f"{shown}: inline {name} code, which the tripwire does not read"
    _, letters, longs, valued = next((f for f in _INLINE if name.startswith(f[0])), _NONE)
    skip = False
    for a in args:
        if skip or a in valued:
            skip = not skip  # `-W ignore`: the value, not the script
            continue
        if a.startswith("-") and len(a) > 1:
            if (why := _option(name, a, shown, letters, longs)) is not None:
                return why or None
            continue
        if a in command._STDIN or a.startswith(("/dev/fd/", "/proc/self/fd/", "<(")):
            break
        if run_time_path(a):
            return f"{shown}: a program named at run time, which the tripwire does not read"
        return None  # a script on disk: its own arguments follow
    return f"`{name}` reading its program from stdin, which the tripwire does not read"


def _option(name: str, a: str, shown: str, letters: str, longs: tuple[str, ...]) -> str | None:
    """What one option of an interpreter says of its program: inline or hidden in another
    file (why), a module on disk ("": read), or nothing (None); `letters` and `longs` the
    options that hand it its program."""
    inline = f"{shown}: inline {name} code, which the tripwire does not read"
    if longs and a.startswith(longs):
        return inline
    if a.startswith("--"):
        return None
    if any(ch in letters for ch in a[1:]):
        return inline
    if "x" in a[1:] and name.startswith(_POLYGLOT):
        return f"{shown}: `-x` runs code from inside another file (a polyglot)"
    if name.startswith("perl") and a.startswith("-m") and not re.fullmatch(r"-m[\w:=,-]*", a):
        return inline  # -M'strict; system …': code in a module's name
    if name.startswith(("python", "pypy")) and a.startswith("-m"):
        return ""  # a module on disk
    return None


_AWK_FILES = ("-f", "--file", "-i", "--include", "--exec")
_AWK_CODE = ("-e", "--source")
_AWK_VALUED = (*_AWK_FILES, *_AWK_CODE, "-l", "--load", "-v", "--assign", "-w")


def _valued(args: Sequence[str], valued: Sequence[str]) -> tuple[list[tuple[str, str]], int]:
    """The options before the first operand, each with its value (glued, after `=`, or the
    next word for one in `valued`, unless that word is an option), and where operands start."""
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] not in ("-", "--"):
        a, i = args[i], i + 1
        key, eq, value = a.partition("=") if a.startswith("--") else (a[:2], "", a[2:])
        keys = sorted(command.long_opts(key, valued)) or [key]  # `--sou` is gawk's --source
        option = args[i].startswith("-") and len(args[i]) > 1 if i < len(args) else True
        if not (eq or value) and keys[0] in valued and not option:
            value, i = args[i], i + 1
        out.extend((k, value) for k in keys)
    return out, i + (i < len(args) and args[i] == "--")


def _awk(name: str, args: Sequence[str]) -> str | None:
    """awk reads as shell only when its program cannot run a command. Lower-cased, -F and
    -f read alike: a value may be a program file or a separator, and the first operand is
    judged as a program either way."""
    opts, i = _valued(args, _AWK_VALUED)
    for key, value in opts:
        if key in ("-l", "--load"):
            return f"`{name} {key}`: a native extension it loads, which the tripwire does not read"
        if key == "-w" and value.startswith("e"):
            return f"`{name} -W {value}`: a program file the tripwire does not read"
    files = [v for k, v in opts if k in _AWK_FILES]
    programs = [v for k, v in opts if k in _AWK_CODE]  # also -E FILE, lower-cased: harmless
    return _programs(name, files, programs + list(args[i : i + 1]), _awk_code)


def _programs(
    name: str, files: Sequence[str], programs: Sequence[str], code: Callable[[str], str | None]
) -> str | None:
    """Why awk's or sed's program files or programs run a command, or None."""
    for f in files:
        if run_time_path(f):
            return f"`{name} -f {f}`: a program named at run time, which the tripwire does not read"
    why = next((why for p in programs if (why := code(p)) is not None), None)
    return None if why is None else f"`{name}` {why}, which the tripwire does not read"


# One awk token at a time: blanks and comments, a string or regex literal (a regex only where
# an operand cannot stand: after one, `/` divides), a name, `||`, or any one character.
_AWK_TOKEN = re.compile(
    r"""(?P<blank>[ \t\r]|\\\n|\#[^\n]*)
    |(?P<lit>"(?:\\.|[^"\\\n])*"|/(?:\\.|\[(?:\\.|[^]\\\n])*]|[^/\\\n[])*/)
    |(?P<name>[a-z_][a-z0-9_]*)|\|\||.""",
    re.S | re.X,
)


def _awk_code(prog: str) -> str | None:
    """What in an awk program runs a command (system, a pipe, @load or an indirect call,
    gawk's network files, a disk device), or None. Strings, regexes and comments skipped."""
    i, operand = 0, False  # the last token ended an operand: a `/` divides, not a regex
    while i < len(prog):
        if operand and prog[i] == "/":
            i, operand = i + 1, False
            continue
        m = _AWK_TOKEN.match(prog, i)
        assert m is not None  # `.` takes any one character
        tok, i = m[0], m.end()
        text = tok[1:-1] if tok[:1] == '"' and m["lit"] else ""
        if "/inet" in text or (text.startswith("/dev/") and not _DEV_OK.fullmatch(text)):
            return f'writing to "{text}"'
        if tok in _AWK_RUNS:  # a lone `"` or `/`: a literal that does not end
            return _AWK_RUNS[tok]
        if not m["blank"]:
            operand = bool(m["lit"]) or (tok not in _AWK_WORDS if m["name"] else tok.isalpha())
            operand |= tok.isdigit() or tok in ")]"
    return None


# One sed command at a time (lower-cased: D, G, H, N, P, Q, F, L too): a one-letter command or
# separator, a comment, a label or branch, text to the end of the line (`a\\` goes on), an
# address between delimiters with its flags, or an `s`/`y` with its flags (`w` to the end).
_ANY_BUT = r"(?:(?!(?P={0}))(?:\\.|.))*+(?P={0})"  # to an unescaped delimiter
_SED_TOKEN = re.compile(
    r"""[ \t\n;{}!,0-9$+~=dghlnpqxzfv]|\#[^\n]*|[bt:][^\n;]*|[rwaic](?:[^\n]*\\\n)*[^\n]*
    |(?:\\|(?=/))(?P<at>.)"""
    + _ANY_BUT.format("at")
    + r"""[im]*
    |(?P<cmd>[sy])(?P<d>.)"""
    + _ANY_BUT.format("d") * 2
    + r"""(?P<flags>[^;\n}w]*)(?:w[^\n]*)?""",
    re.S | re.X,
)


def _sed(args: Sequence[str]) -> str | None:
    """sed reads as shell unless its script can run a command (`e`, `s///e`)."""
    opts, i = _valued(args, ("-e", "--expression", "-f", "--file", "-l", "--line-length"))
    if any(k == "--sandbox" for k, _ in opts):
        return None  # GNU sed refuses e, r and w under --sandbox
    scripts = [v for k, v in opts if k in ("-e", "--expression")]
    files = [v for k, v in opts if k in ("-f", "--file")]
    return _programs("sed", files, scripts or list(args[i : i + 1]), _sed_code)


def _sed_code(script: str) -> str | None:
    """Whether a sed script runs a command (`e`, an `s` with the e flag); a script it cannot
    follow counts as one."""
    i = 0
    while i < len(script):
        if (m := _SED_TOKEN.match(script, i)) is None:
            return "running a command (e)" if script[i] == "e" else "with a script it cannot follow"
        if m["cmd"] == "s" and "e" in m["flags"]:
            return "running a command (s///e)"
        i = m.end()
    return None


# Shells whose language is the one the tripwire parses (zsh, fish and csh are not: zsh's
# glob qualifiers alone run code).
READABLE = command._SHELLS - {"zsh", "fish", "csh", "tcsh"}
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


def _unread(c: command._Cmd, depth: int, guard: Guard) -> str | None:
    """What in one command hands code to a language, or to a time, the tripwire cannot read."""
    at, nested = command._unwrap(c.words)
    if at is not None:
        name, args = command._base(c.words[at]), c.words[at + 1 :]
        if (why := _foreign_code(name, args) or _run_time(c.words[at], name, args)) is not None:
            return why
        subs = [sub for sub in _find(args, c.cwd)[1] if sub] if name == "find" else []
        for sub in subs:  # what -exec/-execdir/-ok run
            if (why := _foreign_code(command._base(sub[0]), sub[1:])) is not None:
                return why
        nested += command._scripts(name, args, c)
    if c.host == "$":  # `$(echo rm) -rf ~`: its output is the command
        return "a command named at run time (`$(…)`), which the tripwire does not read"
    if (why := _env_string(c.words)) is not None:
        return why
    return next((why for s in nested if (why := _walk(s, depth + 1)) is not None), None)


def _foreign_code(name: str, args: Sequence[str]) -> str | None:
    """Code in another language (foreign.py), through a multicall binary too."""
    if name in _MULTICALL and args and not args[0].startswith("-"):
        return _foreign_code(command._base(args[0]), args[1:])
    return foreign_code(name, args)


def _run_time(word: str, name: str, args: Sequence[str]) -> str | None:
    """Shell built at run time: a command named by a variable or substitution (`$x -rf ~`),
    eval of one, a script sourced from a substitution, stdin or a descriptor."""
    if "$" in word and "$(" not in word and "`" not in word:  # `$(…)`: its command says
        return f"`{word}`: a command named at run time, which the tripwire does not read"
    if name == "eval" and any(ch in a for a in args for ch in "$`"):
        return "`eval` of text built at run time, which the tripwire does not read"
    # `. <(…)` reads as `. < (…)`
    if name in command._SOURCES and (not args or run_time_path(args[0])):
        return f"`{name}` of shell built at run time, which the tripwire does not read"
    return None


def _env_string(words: Sequence[str]) -> str | None:
    """`env -S` with `${…}`: env fills it in by its own rules, after the tripwire read it."""
    for k, w in enumerate(words[:-1]):
        split = any(a.startswith(("-s", "--split-string")) for a in words[k + 1 :])
        if command._base(w) == "env" and split and "${" in " ".join(words[k + 1 :]):
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
    if command._base(interp) == "env" and rest.startswith(("-S", "--split-string")):
        value = rest[2:] if rest.startswith("-S") else rest.partition("=")[2] or rest[14:]
        if any(ch in value for ch in "'\"\\$"):
            return f"`{shown}`: an env -S string with quotes or escapes it cannot follow"
        words = value.split()
        while words and ("=" in words[0] and not words[0].startswith("-")):
            words = words[1:]  # NAME=VALUE assignments
        words = words[1:] if words[:1] in (["-i"], ["--ignore-environment"], ["-"]) else words
    elif command._base(interp) == "env" and (" " in rest or rest.startswith("-")):
        return f"`{shown}`: env options it cannot follow"
    if command._base(interp) in ("env", *_MULTICALL) and words:
        interp, words = words[0], words[1:]
    elif command._base(interp) == "env":
        return f"`{shown}`: env without a program"
    if "/" in interp and not interp.startswith(SYSTEM_DIRS):
        return f"`{shown}`: its interpreter is not in a system folder"
    if (name := command._base(interp)) not in READABLE:
        return f"`{shown}`: {name} is not a shell the tripwire reads"
    return None if _shell_flags(words) else f"`{shown}`: shell options it cannot follow"


def _shell_flags(words: Sequence[str]) -> bool:
    """Flags only (`-e`, `-eu`, `+x`, `--posix`), none that takes a script or an rc file."""
    return all(
        w in ("--posix", "--norc", "--noprofile", "--restricted", "--")
        or (len(w) > 1 and w[0] in "-+" and w[1] != "-" and w[1:].isalpha() and "c" not in w)
        for w in words
    )
