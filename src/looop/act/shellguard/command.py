"""One simple command as the parsed reading sees it, the wrappers stripped to find its name, and
what it runs as code (a `-c` script, eval, trap, a crontab, its stdin, a script operand)."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

MAX_CHARS = 256 * 1024  # a decision is at most this big; longer text is refused unread
_SHELLS = frozenset(
    {"sh", "bash", "rbash", "zsh", "dash", "ksh", "mksh", "pdksh", "oksh", "yash", "ash", "hush"}
    | {"posh", "fish", "tcsh", "csh"}
)
# They run the script on their stdin (or a file) later, as a shell: `echo … | at now`
_SCHEDULERS = frozenset({"at", "batch", "crontab"})
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
# Words that may stand before the command proper; each wrapper with how many plain arguments
# it eats before the command (timeout's duration), then its options that take an argument.
_XARGS_LONG = "--arg-file --delimiter --max-args --max-procs --max-chars --process-slot-var"
_KEYWORDS = frozenset({"if", "then", "else", "elif", "do", "while", "until", "!", "{", "("})
_WRAPPERS = {
    name: (frozenset(takes.split()), plain)
    for names, plain, takes in (
        ("command builtin nohup setsid unshare busybox toybox coproc unbuffer", 0, ""),
        ("chrt taskset", 1, ""),
        ("env", 0, "-u --unset -c --chdir"),
        ("exec", 0, "-a"),
        ("time", 0, "-f --format -o --output"),
        ("nice", 0, "-n --adjustment"),
        ("timeout", 1, "-s --signal -k --kill-after"),
        ("stdbuf", 0, "-i -o -e"),
        ("ionice", 0, "-c -n -p -t --class --classdata"),
        ("flock chroot", 1, "-w --timeout --conflict-exit-code --userspec --groups"),
        ("nsenter caffeinate", 0, "-t --target -w"),
        ("xargs", 0, "-i -n -p -l -d -a -e -s " + _XARGS_LONG),
        ("watch", 0, "-n --interval -d --differences -q"),
        ("systemd-run", 0, "-p --property -u --unit -e --setenv"),
    )
    for name in names.split()
}
_ASSIGNMENT = re.compile(r"[a-z_][a-z0-9_]*\+?=.*", re.S)
_MAX_DEPTH = 4  # `bash -c "sh -c '…'"` nesting we still look into; deeper is refused


# a crontab line's schedule (`@daily`, five time fields), before its command
_CRON = re.compile(r"^[ \t]*(?:@[a-z]+|(?:[^\s#=]+[ \t]+){4}[^\s=]+)[ \t]+", re.M)


_ANSI_C = re.compile(
    r"\\(x[0-9a-f]{1,2}|u[0-9a-f]{1,4}|U[0-9a-f]{1,8}|[0-7]{1,3}|c.?|.)", re.S | re.I
)
_ANSI_SIMPLE = dict(zip("abeEfnrtv", "\a\b\x1b\x1b\f\n\r\t\v", strict=True))


def _ansi_c(body: str) -> str:
    """What bash makes of the inside of `$'…'`."""

    def one(m: re.Match[str]) -> str:
        e = m.group(1)
        if e[0] == "c":
            return chr(ord(e[1]) & 0x1F) if len(e) > 1 else ""
        if e[0] not in "xuU01234567" or e in ("x", "u", "U"):
            return _ANSI_SIMPLE.get(e, e)
        code = int(e[1:], 16) if e[0] in "xuU" else int(e, 8)
        return chr(code) if code <= 0x10FFFF else ""

    return _ANSI_C.sub(one, body)


@dataclass
class _Cmd:
    """One simple command: its words, the text fed to its stdin, and what feeds on its output."""

    host: str | None = None  # inside `$(…)`/`<(…)`/backticks: what runs it as code ("$": the
    # substitution is itself the command word)
    words: list[str] = field(default_factory=list)
    herestrings: list[str] = field(default_factory=list)
    bodies: list[str] = field(default_factory=list)  # here-documents
    cwd: str | None = None  # where an earlier `cd` in the same text went, when we can tell


def _base(word: str) -> str:
    return word.rsplit("/", 1)[-1] if "/" in word.rstrip("/") else word


def long_opts(word: str, known: Collection[str]) -> set[str]:
    """The long options in `known` that `word` may be, read as git and GNU getopt_long read
    it: its name (before any `=`) if known, else every one it abbreviates (`--mir`: --mirror).
    Two or more is an ambiguity the tool refuses, but each is read: another version of the
    tool may lack the others. `known` may hold just the options a rule reads (and any of the
    tool's that are a prefix of one): a prefix the tool reads as another option is ambiguous."""
    name = word.partition("=")[0] if word.startswith("--") else ""
    return {name} if name in known else {k for k in known if len(name) > 2 and k.startswith(name)}


def flags(opts: Sequence[str], known: Collection[str]) -> set[str]:
    """What options `opts` (from _split_opts) may set: each letter of a short cluster as `-x`
    (a value glued on too), each long option as long_opts reads it."""
    return {x for o in opts for x in long_opts(o, known) or {"-" + c for c in o[1:] if o[1] != "-"}}


def _takes(word: str, takes: Collection[str]) -> bool:
    """Does option `word` eat the next word: one of `takes`, or a long one abbreviated?"""
    return word in takes or ("=" not in word and bool(long_opts(word, takes)))


_ENV_ESCAPE = re.compile(r"\\(c[\s\S]*|[\s\S])")


def env_split(value: str) -> str:
    """An `env -S` string with env's own escapes read as env reads them: `\\_` and the
    whitespace escapes separate words, `\\c` ends the string (`rm\\_-rf\\_~` is rm -rf ~)."""
    return _ENV_ESCAPE.sub(
        lambda m: "" if m[1][0] == "c" else " " if m[1] in "_tnvfr" else m[0], value
    )


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
            opt, i = words[i], i + 1
            if opt == "--":
                break
            if base == "command" and "v" in opt[1:]:
                return None, []  # `command -v x` only looks x up
            if base == "env" and (opt.startswith("-s") or long_opts(opt, ["--split-string"])):
                # `env -S 'a b'` splits the string into the command and its arguments
                value = opt.partition("=")[2] if opt.startswith("--") else opt[2:]
                if not value and i < len(words):
                    value, i = words[i], i + 1
                return None, [" ".join([env_split(value), *words[i:]])]
            i += _takes(opt, takes)
        i += plain
        if base == "flock" and i < len(words) and _takes(words[i], ("-c", "--command")):
            return None, list(words[i + 1 : i + 2])
        if base == "watch" and i < len(words):
            return None, [" ".join(words[i:])]  # watch hands its words to `sh -c`
    return None, []


def _split_opts(
    args: Sequence[str], takes: str = "", longs: Collection[str] = ()
) -> tuple[list[str], list[str]]:
    """(options, operands), options ending at `--`; a short option ending in a letter of
    `takes`, or a long one in `longs` without `=`, eats the next word (dropped)."""
    opts: list[str] = []
    operands: list[str] = []
    i, options = 0, True
    while i < len(args):
        a, i = args[i], i + 1
        if options and a == "--":
            options = False
        elif options and a.startswith("-") and len(a) > 1:
            opts.append(a)
            i += _takes(a, longs) if a.startswith("--") else a[-1] in takes
        else:
            operands.append(a)
    return opts, operands


def _reads_code(name: str, args: Sequence[str]) -> bool:
    """Does this command run whatever arrives on its stdin as code?"""
    if name in _SHELLS:
        return True
    if name in _SCHEDULERS:  # not when it lists, removes or shows jobs, or edits a crontab
        return not any(a[:2] in ("-l", "-r", "-c", "-d", "-e", "-q") for a in args)
    if name in _SOURCES:
        return bool(args) and args[0] in _STDIN
    if not _INTERPRETERS.fullmatch(name):
        return False
    # the first word that is not an option, or an option that hands it code: stdin or not
    at = next((a for a in args if a in _STDIN or a[:1] != "-" or a.startswith(_CODE_FLAGS)), "-")
    return at in _STDIN


def shell_opts(args: Sequence[str]) -> tuple[list[str], int]:
    """A shell's options (or `set`'s), and where its operands start: `--` and a lone `-` end
    them (`bash -c - 'rm -rf ~'`), `-o NAME` and an rc file take the next word."""
    opts: list[str] = []
    i = 0
    while i < len(args) and args[i][:1] in "-+" and args[i] not in ("--", "-"):
        opts.append(args[i])
        i += 2 if args[i] in ("-o", "+o", "--rcfile", "--init-file") else 1
    return opts, i + (args[i : i + 1] in (["--"], ["-"]))


def _scripts(name: str, args: Sequence[str], c: _Cmd) -> list[str]:
    """Command text this command will run: `-c` scripts, eval, trap, here-strings/-documents."""
    if name == "eval":
        return [" ".join(args)]
    if name == "alias":  # typed into a shell, `alias l='looop land x'` then `l`
        return [a.partition("=")[2] for a in args if "=" in a]
    if name == "trap":
        return _split_opts(args)[1][:1]
    if name == "script":  # getopt_long's, anywhere: -c CMD, -qcCMD, --command=CMD, --comm CMD
        got = [(k, a.partition("c")[2]) for k, a in enumerate(args) if a[:1] == "-" != a[1:2]]
        got += [(k, a.partition("=")[2]) for k, a in enumerate(args) if long_opts(a, ["--command"])]
        return [v or " ".join(args[k + 1 : k + 2]) for k, v in got if v or "c" in args[k]]
    if name in _SCHEDULERS:
        fed = c.herestrings + c.bodies
        return [_CRON.sub("", t) for t in fed] if name == "crontab" else fed
    if name not in _SHELLS:
        return []
    opts, i = shell_opts(args)
    runs = ["--command", "--init-command"]  # fish's -C: code run before its script
    out = [o.partition("=")[2] for o in opts if "=" in o and long_opts(o, runs)]
    inline = any(_takes(o, runs) or (o[:2] != "--" and "c" in o[1:]) for o in opts)
    if inline and i < len(args):
        out.append(args[i])
    out += c.herestrings
    if not (inline or out):
        out += c.bodies
    return out


def _code_arg(name: str, args: Sequence[str], k: int) -> bool:
    """Is args[k] run as code by `name`? Shells, eval and source: any argument (the script or
    what it is handed); an interpreter: its script operand or the value of -c/-e/…"""
    if name in _SHELLS or name in _SOURCES or name in _SCHEDULERS or name == "eval":
        return True
    if not _INTERPRETERS.fullmatch(name):
        return False
    first = next((i for i, a in enumerate(args) if not a.startswith("-") or a == "-"), None)
    return (k > 0 and args[k - 1] in _CODE_FLAGS) or first == k


# xargs options that always take the next word, and those whose case the lower-casing lost
# (-I/-i, -L/-l, -E/-e, -P/-p: one takes the next word, the other does not)
_XARGS_TAKES = frozenset("adns")
_XARGS_EITHER = frozenset("ilep")


def fed_commands(words: Sequence[str]) -> list[list[str]]:
    """The commands an `xargs` (or GNU `parallel`) among `words`' wrappers may run, in each
    reading the lower-cased options allow; what it reads from its input comes after them."""
    x = next((k for k, w in enumerate(words) if _base(w) in ("xargs", "parallel")), None)
    if x is None or (x > 0 and _unwrap(words[:x])[0] is not None):
        return []  # not a wrapper here: an argument of another command
    starts: list[int] = []
    i = x + 1
    while i < len(words):
        w = words[i]
        i += 1
        if w == "--":
            break
        if not w.startswith("-") or len(w) == 1:
            i -= 1
            break
        if w.startswith("--"):
            i += _takes(w, _WRAPPERS["xargs"][0])
            continue
        at = next((k for k, ch in enumerate(w) if ch in _XARGS_TAKES | _XARGS_EITHER), -1)
        if at != len(w) - 1:
            continue  # flags only, or the value glued on (`-n1`, `-I{}`)
        either = w[-1] in _XARGS_EITHER and i < len(words) and not words[i].startswith("-")
        if either:
            starts.append(i)  # the next word may be the command itself
        i += either or w[-1] in _XARGS_TAKES
    starts.append(i)
    return [list(words[k:]) for k in dict.fromkeys(starts) if k < len(words)]
