"""The per-command check of the parsed reading, and the check of one text at a depth."""

from __future__ import annotations

from dataclasses import replace

from looop.act.shellguard.command import _base, _Cmd, _scripts, _unwrap, fed_commands
from looop.act.shellguard.parsed import _tree_check
from looop.act.shellguard.rules import _device, _find, _rule, _show
from looop.act.shellguard.tables import _DOWNLOADERS, _MAX_DEPTH, _WRITES
from looop.act.shellguard.targets import NO_GUARD, Guard


def _command_rule(c: _Cmd, depth: int, guard: Guard = NO_GUARD) -> str | None:
    for op, target in c.redirects:
        if op in _WRITES and _device(target):
            return f"a redirect onto a disk device: `{op} {target}`"
    at, nested = _unwrap(c.words)
    inner = guard.at(c.cwd)  # a nested script starts where this command runs
    for script in nested:
        if (why := _check(script, depth + 1, inner)) is not None:
            return why
    if at is None:
        return None
    name, args, shown = _base(c.words[at]), c.words[at + 1 :], _show(c.words[at:])
    if (why := _rule(name, args, shown, c.cwd, guard)) is not None:
        return why
    if (why := _fed_rule(c, depth, guard)) is not None:
        return why
    if name in _DOWNLOADERS and c.host is not None:
        if c.host == "$":
            return f"a download run as a command: `$({shown})`"
        return f"a download run by {c.host}: `{shown}`"
    if name == "find":
        for sub in _find(args, c.cwd, guard)[1]:
            sub_cmd = _Cmd(host=c.host, words=sub, cwd=c.cwd)
            if (why := _command_rule(sub_cmd, depth + 1, guard)) is not None:
                return why
    for script in _scripts(name, args, c):
        if (why := _check(script, depth + 1, inner)) is not None:
            return why
    return None


def _fed_rule(c: _Cmd, depth: int, guard: Guard) -> str | None:
    """What xargs (or parallel) runs, judged with what it reads from its input as one more
    operand (`{}`), in each reading its lower-cased options allow: `xargs rm -rf` may reach
    any path, `xargs rm -f` no folder."""
    readings = fed_commands(c.words)
    if readings and depth >= _MAX_DEPTH:
        return f"xargs nested over {_MAX_DEPTH} levels deep: too deep to check"
    fed = replace(guard.at(c.cwd), fed=True)
    for sub in readings:
        if why := _command_rule(_Cmd(host=c.host, words=[*sub, "{}"], cwd=c.cwd), depth + 1, fed):
            return why
        runner = map(_base, c.words[: len(c.words) - len(sub)])
        if "parallel" in runner and (why := _check(" ".join([*sub, "{}"]), depth + 1, fed)):
            return why  # parallel hands its words to a shell
    return None


def _check(cmd: str, depth: int, guard: Guard = NO_GUARD) -> str | None:
    if depth > _MAX_DEPTH:
        return (
            f"shell code nested over {_MAX_DEPTH} levels deep (sh -c, eval, …): too deep to check"
        )
    return _tree_check(cmd, depth, guard, _command_rule, _check)
