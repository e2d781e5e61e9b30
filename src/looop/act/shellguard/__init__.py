"""The shell tripwire: refuse the few commands that are almost always an accident.

A tripwire, not a sandbox. The text is parsed the way bash would parse it (tree-sitter-bash),
and every command anywhere in it is checked: pipelines, lists, compound commands, function
bodies, subshells, `$(…)`/backticks/`<(…)` (inside double quotes too), here-strings, and the
scripts handed to `sh -c`, `eval`, `env -S`, `watch`, `trap`, `find -exec`, … up to a depth
bound. Words are read after quote removal and `$'…'` decoding, so `"su"do` and `$'\\x73udo'`
are still sudo. Names the text sets (`d=~`, `for`, `read`, …) are followed into a destructive
command's path (parsed.py, targets.py); anything else built at run time (the environment's
variables, scripts on disk) walks past it. `at`, `batch` and `crontab` read a script as shells do.

Fail closed: there is one reading, and text the parser reads only in part (a syntax error)
is refused as unreadable. Recursive deletes, `find -delete`, `chmod -R`/`chown -R`, moves and
`git clean` aimed at a home, the data dir, the looop checkout, a worker's repo or an ancestor
of any of these are refused by where the path points (targets.py; the caller's `Guard` names
them), not by how it is spelled. Text over MAX_CHARS, or scripts nested deeper than
_MAX_DEPTH, are refused unread; the guard itself never raises. Pure, no I/O; the parser
loads lazily.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from looop.act.shellguard.command import _SHELLS, _base
from looop.act.shellguard.foreign import unreadable_line as unreadable_line
from looop.act.shellguard.foreign import unreadable_script as unreadable_script
from looop.act.shellguard.parsed import _NON_ASCII, _check, bounded
from looop.act.shellguard.targets import NO_GUARD as NO_GUARD
from looop.act.shellguard.targets import Guard

DEFAULT_FIX = "do it by hand, or set shell_policy"


def tripwire(cmd: str, guard: Guard = NO_GUARD) -> str | None:
    """The built-in rule `cmd` trips, quoting the offending part; None when it passes.
    `guard`: where the text runs and what it must not destroy there."""
    return bounded(cmd, _check, guard)


def foreign_interpreter(script: str) -> str | None:
    """The interpreter a script's #! line names when it is not a shell (python, node, …)."""
    words = script[2:].split("\n", 1)[0].lower().split() if script.startswith("#!") else []
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
    guard: Guard = NO_GUARD,
) -> str | None:
    """Why `cmd` is refused under a policy, or None. An allow match wins over everything."""
    if any(p.search(cmd) for p in allow):
        return None
    for p in deny:
        if p.search(cmd):
            return f"the shell_policy deny pattern `{' '.join(p.pattern.split())}` matches"
    why = tripwire(cmd, guard) if builtin else None
    return None if why is None else their_case(why, (cmd, *guard.spellings))


_WORD = re.compile(r"[^\s`():;,]+")


def their_case(why: str, sources: Sequence[str]) -> str:
    """A refusal with the command and the paths it quotes in the case they were written
    (the checks read lower-cased ASCII text): inside backquotes every word, elsewhere only the
    paths, each taken from the first source that holds it."""
    pairs = [(_NON_ASCII.sub("x", s.lower()), s) for s in sources if len(s.lower()) == len(s)]

    def restore(m: re.Match[str]) -> str:
        word = m.group()
        for low, src in pairs:
            at = low.find(word)
            if at >= 0:
                return src[at : at + len(word)]
        return word

    def path(m: re.Match[str]) -> str:
        return restore(m) if "/" in m.group() else m.group()

    return "`".join(
        _WORD.sub(path if k % 2 == 0 else restore, p) for k, p in enumerate(why.split("`"))
    )


def refusal(why: str, fix: str = DEFAULT_FIX, what: str = "run_shell") -> str:
    """The one-line error a refused command (run_shell, a worker's command, …) fails with."""
    return (
        f"{what} refused by the shell tripwire: {why}; "
        f"this is a guard against accidents, not a sandbox — {fix}"
    )
