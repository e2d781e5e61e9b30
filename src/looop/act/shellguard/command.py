"""One simple command as both readings see it, and the wrappers stripped to find its name."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from looop.act.shellguard.tables import _ASSIGNMENT, _KEYWORDS, _WRAPPERS


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


_ENV_SPACES = frozenset("_tnvfr")


def env_split(value: str) -> str:
    """An `env -S` string with env's own escapes read as env reads them: `\\_` and the
    whitespace escapes separate words, `\\c` ends the string (`rm\\_-rf\\_~` is rm -rf ~)."""
    out: list[str] = []
    i = 0
    while i < len(value):
        ch, nxt = value[i], value[i + 1 : i + 2]
        if ch == "\\" and nxt:
            if nxt == "c":
                break
            out.append(" " if nxt in _ENV_SPACES else ch + nxt)
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


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
                return None, [" ".join([env_split(value), *words[i:]])]
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


# xargs options that always take the next word, and those whose case the lower-casing lost
# (-I/-i, -L/-l, -E/-e, -P/-p: one takes the next word, the other does not)
_XARGS_TAKES = frozenset("adns")
_XARGS_EITHER = frozenset("ilep")
_XARGS_LONG = ("--arg-file", "--delimiter", "--max-args", "--max-procs", "--max-chars")


def fed_commands(words: Sequence[str]) -> list[list[str]]:
    """The commands an `xargs` (or GNU `parallel`) among `words`' wrappers may run, in each
    reading the lower-cased options allow; what it reads from its input comes after them."""
    x = next((k for k, w in enumerate(words) if _base(w) in ("xargs", "parallel")), None)
    if x is None or (x > 0 and _command_at(words[:x]) is not None):
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
            i += 1 if w in _XARGS_LONG else 0
            continue
        flags = w[1:]
        at = next((k for k, ch in enumerate(flags) if ch in _XARGS_TAKES | _XARGS_EITHER), -1)
        if at < 0 or at < len(flags) - 1:
            continue  # flags only, or the value glued on (`-n1`, `-I{}`)
        if flags[at] in _XARGS_EITHER:
            if i < len(words) and not words[i].startswith("-"):
                starts.append(i)  # the next word may be the command itself
            else:
                continue
        i += 1
    starts.append(i)
    return [list(words[k:]) for k in dict.fromkeys(starts) if k < len(words)]
