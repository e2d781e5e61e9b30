"""One word of a path as bash expands it: `~`, `~+`, parameters (`$HOME`, `${HOME%/}`,
`${HOME:0}`, `${X:-~}`, …) and the magic links under /proc, as far as the text and the names
the guard knows tell. Three outcomes: the path; None, a value the text does not tell (a
variable it does not set: let pass, as before); or `Unsure`, a spelling the tripwire cannot
evaluate exactly on a name it knows (`${HOME/x/y}`, `${!name}`, `$OLDPWD`, another process's
`/proc/N/cwd`, what xargs feeds a command, a command's output, a name the text sets from input)
— refused wherever a destructive command aims at it. Words arrive lower-cased. Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping
from fnmatch import fnmatchcase


class Unsure(Exception):
    """A word whose target cannot be told exactly; the message says why, for a refusal."""


Value = str | Unsure  # a name's value; Unsure: one the text sets but the tripwire cannot tell


FED = "what xargs reads from its input"  # the positional parameters of a fed command
_PARAM = re.compile(r"([a-z_][a-z0-9_]*|[0-9]+|[@*#?$!-])(\[[^\]]*\])?")
_POSITIONAL = re.compile(r"[0-9]+|[@*]")
_OPS = (":-", ":=", ":?", ":+", "-", "=", "?", "+", "%%", "%", "##", "#", ":")
_CASE_OPS = ("^^", "^", ",,", ",")
_STACK = re.compile(r"~[+-]?[0-9]+")
# a command's output (`…`, $(…)), ${…}, or $name and $1, $@, …
_EXPANSION = re.compile(r"(?P<sub>`|\$\()|\$\{|\$(?P<name>[a-z_][a-z0-9_]*|[0-9@*#?$!-])")
_SUBSTRING = re.compile(r"\s*(-?[0-9]+)\s*(?::\s*(-?[0-9]+)\s*)?")


def _trim(value: str, op: str, pattern: str) -> str:
    """${name%pat}, %%, #, ##: the shortest / longest suffix / prefix matching removed."""
    cuts, suffix = range(len(value) + 1), op[0] == "%"
    for k in reversed(cuts) if op in ("%", "##") else cuts:
        if fnmatchcase(value[k:] if suffix else value[:k], pattern):
            return value[:k] if suffix else value[k:]
    return value


_BRACES = re.compile(r"\\.|[{}]", re.S)  # an escaped character, or a brace that counts


def _closing(word: str, start: int) -> int:
    """Index of the `}` closing a `${` whose body starts at `start`; -1 when none does."""
    depth = 1
    for m in _BRACES.finditer(word, start):
        depth += {"{": 1, "}": -1}.get(m[0], 0)
        if depth == 0:
            return m.start()
    return -1


def _get(names: Mapping[str, Value], name: str) -> str | None:
    value = names.get(name)
    if isinstance(value, Unsure):
        raise value
    return value


def _lookup(name: str, names: Mapping[str, Value], fed: bool) -> str | None:
    if name in names:
        return _get(names, name)
    if name == "oldpwd":
        raise Unsure("$OLDPWD, the folder before the last cd, which the text does not tell")
    if fed and _POSITIONAL.fullmatch(name):
        raise Unsure(FED)
    return None


def _substring(value: str, spec: str) -> str:
    """${name:offset} and ${name:offset:length}, plain integers only."""
    m = _SUBSTRING.fullmatch(spec)
    if m is None:
        raise Unsure(f"${{…:{spec}}}, a substring the tripwire cannot evaluate")
    off = int(m.group(1))
    start = max(len(value) + off, 0) if off < 0 else off
    if m.group(2) is None:
        return value[start:]
    length = int(m.group(2))
    end = start + length if length >= 0 else len(value) + length
    if end < start:
        raise Unsure(f"${{…:{spec}}}, a substring bash refuses")
    return value[start:end]


def _braced(body: str, names: Mapping[str, Value], fed: bool) -> str | None:
    """What `${body}` makes; None: a value the text does not tell."""
    if body.startswith("!") and len(body) > 1:
        raise Unsure(f"${{{body}}}, an indirection the tripwire cannot follow")
    if body.startswith("#") and len(body) > 1:
        return None  # a length: a number, not a folder
    m = _PARAM.match(body)
    if m is None:
        raise Unsure(f"${{{body}}}, a parameter expansion the tripwire cannot read")
    value = _lookup(m.group(1), names, fed)
    sub, rest = m.group(2), body[m.end() :]
    if sub is not None and value is not None and sub not in ("[0]", "[@]", "[*]"):
        raise Unsure(f"${{{body}}}, an element the tripwire cannot evaluate")
    if not rest:
        return value
    op = next((o for o in _OPS + _CASE_OPS if rest.startswith(o)), "")
    word = rest[len(op) :]
    if op in (":-", "-", ":=", "="):
        return value if value is not None else expand_word(word, names, fed)
    if op in (":?", "?") or op in _CASE_OPS:
        return value  # words are compared lower-cased: a case change is the same path
    if op in (":+", "+"):
        return expand_word(word, names, fed)  # set or not, the alternative may be the path
    if value is None:
        return None
    if op == ":":
        return _substring(value, word)
    if op:  # %, %%, #, ##
        pattern = expand_word(word, names, fed)
        if pattern is None:
            raise Unsure(f"${{{body}}}, a trim by a pattern the text does not tell")
        return _trim(value, op, pattern)
    raise Unsure(f"${{{body}}}, a parameter expansion the tripwire cannot evaluate exactly")


def _tilde(word: str, names: Mapping[str, Value]) -> str | None:
    """~, ~/x, ~+ ($PWD), ~- ($OLDPWD); ~user: None (the system check reads it as spelled)."""
    head, sep, tail = word.partition("/")
    if head == "~":
        base = _get(names, "home")
    elif head == "~+":
        base = _get(names, "pwd")
    elif head == "~-":
        raise Unsure("~-, the folder before the last cd, which the text does not tell")
    elif _STACK.fullmatch(head):
        raise Unsure(f"{head}, an entry of the directory stack the text does not tell")
    else:
        return None
    return None if base is None else base + sep + tail


def expand_word(word: str, names: Mapping[str, Value], fed: bool = False) -> str | None:
    """`word` with ~ and parameters expanded: the text, None (a value the text does not
    tell), or Unsure (raised). `fed`: the positional parameters (and `{}`) are what xargs
    hands the command."""
    if fed and "{}" in word:
        raise Unsure(FED)
    if word.startswith("~"):
        got = _tilde(word, names)
        if got is None:
            return None
        word = got
    out: list[str] = []
    unknown, i = False, 0
    while (m := _EXPANSION.search(word, i)) is not None:
        out.append(word[i : m.start()])
        i = m.end()
        if m["sub"]:
            if not word[i:].startswith("(") and not word[i:].lstrip().startswith("mktemp"):
                raise Unsure(f"{word}, a command's output, which the tripwire cannot evaluate")
            got, i = None, m.start() + 1  # arithmetic, or a fresh temp folder: not a target
        elif m["name"] is None:  # ${…}
            if (end := _closing(word, i)) < 0:
                return None  # bash refuses the line ("bad substitution")
            got, i = _braced(word[i:end], names, fed), end + 1
        else:
            got = _lookup(m["name"], names, fed)
        unknown |= got is None
        out.append(got or "")
    return None if unknown else "".join(out) + word[i:]


def _link(out: list[str], name: str) -> bool:
    """`out` ends in /proc/PID/NAME or /proc/PID/task/TID/NAME (any PID, globs too)."""
    if len(out) not in (3, 5) or not fnmatchcase("proc", out[0]):
        return False
    if len(out) == 5 and not fnmatchcase("task", out[2]):
        return False
    return fnmatchcase(name, out[-1])


def magic(path: str, cwd: str | None) -> str:
    """An absolute path with /proc's magic links taken as what they name: …/root is /, our
    own …/cwd the command's cwd (`cwd`, absolute or None); another process's cwd, a file
    descriptor's link (/proc/N/fd/K, /dev/fd/K, /dev/stdin) cannot be told (Unsure). `..`
    is kept for the symlink resolution that follows (`link/..` is the target's parent)."""
    raw: list[str] = []
    out: list[str] = []  # the same, `..` folded: where the links are looked for
    for seg in path.split("/"):
        if seg in ("", "."):
            continue
        raw.append(seg)
        if seg == "..":
            if out:
                out.pop()
            continue
        out.append(seg)
        if _link(out, "root"):
            raw, out = [], []
        elif _link(out, "cwd"):
            if not (len(out) == 3 and out[1] in ("self", "thread-self") and cwd is not None):
                raise Unsure(f"/{'/'.join(out)}, another process's folder")
            out = [s for s in cwd.split("/") if s]
            raw = list(out)
        elif (
            (len(out) in (4, 6) and (_link(out[:-1], "fd") or _link(out[:-1], "map_files")))
            or (len(out) == 3 and out[:2] == ["dev", "fd"])
            or out in (["dev", "stdin"], ["dev", "stdout"], ["dev", "stderr"])
        ):
            raise Unsure(f"/{'/'.join(out)}, a file descriptor's link")
    return "/" + "/".join(raw) + ("/" if path.endswith(("/", "/.")) and raw else "")
