"""The tripwire's one reading: tree-sitter-bash's tree walked by hand, every command node
checked after quote removal, substitutions tagged with the command that runs them as code;
and the check of one command (`_command_rule`) and of one text at a depth (`_check`)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING

from looop.act.shellguard import command, rules
from looop.act.shellguard.expand import Unsure, Value
from looop.act.shellguard.grammar import bash_parser
from looop.act.shellguard.targets import _REFS, NO_GUARD, Guard, assigned, braces

if TYPE_CHECKING:
    from tree_sitter import Node, Parser

_WRITES = frozenset({">", ">>", ">|", "&>", "&>>", ">&", "<>"})

_ESCAPE = re.compile(r"\\(.)", re.S)
_DQ_ESCAPE = re.compile(r'\\([$`"\\\n])')
_BACKTICKS = re.compile(r"`([^`]*)`")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_SUBST = frozenset({"command_substitution", "process_substitution"})
_REDIRECT_NODES = frozenset({"file_redirect", "heredoc_redirect", "herestring_redirect"})
_DEFAULTS = re.compile(r"\$\{([a-z_][a-z0-9_]*):?=([^}]*)\}")  # `${d:=~}` sets d
_DECLARES = frozenset({"declare", "typeset", "local", "export", "readonly"})
# They set names from input: each plain word (an option's value too), and their default name
_READS = {"read": "reply", "mapfile": "mapfile", "readarray": "mapfile", "getopts": "optarg"}
_READS["printf"] = ""  # only with -v

CommandRule = Callable[[command._Cmd, int, Guard], "str | None"]  # one command's refusal, if any
TextCheck = Callable[[str, int, Guard], "str | None"]  # a nested text's refusal, if any


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
        return command._ansi_c(s[2:-1] if len(s) >= 3 and s.endswith("'") else s[2:])
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


def _from_command(n: Node, outer: Sequence[Node], host_of: dict[int, str | None]) -> command._Cmd:
    """One `command` node (plus the `outer` redirects that reach it) as words, here-strings
    and here-documents; notes the host of each substitution in its arguments (the command
    that will run their output as code)."""
    parts = [*n.children, *outer]
    c = command._Cmd()
    words: list[str] = []
    name_subs: list[Node] = []
    stdin_subs: list[Node] = []  # `bash < <(curl x)`, `python3 <<< "$(curl x)"`
    arg_subs: list[tuple[int, Node]] = []  # (index of the word it sits in, substitution)
    end = -1
    for p in parts:
        t = p.type
        if t == "command_name":
            words += [_word(ch, name_subs) for ch in p.named_children[:1]]
        elif t == "herestring_redirect":
            c.herestrings += [_word(ch, stdin_subs).lower() for ch in p.named_children[-1:]]
        elif t == "heredoc_redirect":
            c.bodies += [_text(ch).lower() for ch in p.named_children if ch.type == "heredoc_body"]
        elif t == "file_redirect":
            stdin_subs += [ch for ch in p.named_children if ch.type in _SUBST]
        elif p.is_named and t not in ("variable_assignment", "comment"):
            found: list[Node] = []
            word = _word(p, found)
            if words and p.start_byte == end:  # one word the parser split in two: `${a:$n}`
                word = words.pop() + word
            words.append(word)
            arg_subs += [(len(words) - 1, s) for s in found]
        end = p.end_byte
    c.words = [w.lower() for w in words]
    at = command._unwrap(c.words)[0]
    host_of.update((s.id, "$") for s in name_subs)
    if at is None:
        host_of.update((s.id, None if c.words else "$") for _, s in arg_subs)
        return c
    name, args = command._base(c.words[at]), c.words[at + 1 :]
    host_of.update((s.id, name if command._reads_code(name, args) else None) for s in stdin_subs)
    for k, s in arg_subs:
        host_of[s.id] = (
            "$" if k == at else (name if command._code_arg(name, args, k - at - 1) else None)
        )
    return c


_Sets = dict[str, list[Value]]  # a name, and every word it may be set to
_Calls = list[tuple[str, list[str]]]  # the commands a text runs, with their arguments
_NAME = re.compile(r"[a-z_][a-z0-9_]*")


def _assign(sets: _Sets, word: str, nameref: bool) -> None:
    """`name=value`, `name+=value` or `name[i]=value`; a name reference is not followed."""
    name, _, value = word.partition("=")
    if name.endswith("+"):
        name, value = name[:-1], f"${{{name[:-1]}}}{value}"
    name = name.split("[", 1)[0]
    ref = Unsure(f"${name}, a name reference the tripwire does not follow")
    sets.setdefault(name, []).append(ref if nameref else value)


def _assign_word(sets: _Sets, word: str, nameref: bool) -> None:
    """A word that assigns (`d=~`), or one that sets a name told only at run time (`"$n"=~`:
    under "", for every name the text reads)."""
    if command._ASSIGNMENT.fullmatch(word):
        _assign(sets, word, nameref)
    elif "$" in word.partition("=")[0] and "=" in word:
        sets.setdefault("", []).append(Unsure(f"{word}, a name the tripwire cannot tell"))


def _tree_sets(n: Node, sets: _Sets, defined: set[str]) -> None:
    """What an assignment node (`d=~`, `a+=(x y)`, `declare -n r=HOME`), a for loop or a
    function definition sets."""
    if n.type == "function_definition" and (fn := n.child_by_field_name("name")) is not None:
        defined.add(_text(fn).lower())
    if n.type == "for_statement" and (loop := n.child_by_field_name("variable")) is not None:
        looped = [_word(v, []).lower() for v in n.children_by_field_name("value")]
        sets.setdefault(_text(loop).lower(), []).extend(looped or ["$@"])
    if n.type == "declaration_command":  # `export "d=~"`, `export {a,b}=~`: words that assign
        words = [_word(ch, []).lower() for ch in n.named_children]
        nameref = any(w.startswith("-") and "n" in w for w in words)
        for ch, word in zip(n.named_children, words, strict=True):
            for w in braces(word) if ch.type != "variable_assignment" else []:
                _assign_word(sets, w, nameref)
    if n.type != "variable_assignment":
        return
    parent = n.parent
    flags = [_text(ch) for ch in parent.children if ch.type == "word"] if parent else []
    declared = parent is not None and parent.type == "declaration_command"
    nameref = declared and any(f.startswith("-") and "n" in f for f in flags)
    key = n.child_by_field_name("name")
    value = n.child_by_field_name("value")
    plus = "+" if any(ch.type == "+=" for ch in n.children) else ""
    name = _text(key).lower() if key is not None else ""
    values = (value.named_children if value.type == "array" else [value]) if value else []
    for word in [_word(v, []).lower() for v in values] or [""]:
        _assign(sets, f"{name}{plus}={word}", nameref)


def _command_sets(c: command._Cmd, sets: _Sets, calls: _Calls, parser: Parser, depth: int) -> None:
    """What a command sets: assignments a wrapper or declare carries, every name read,
    mapfile, printf -v and getopts may set from input, what an eval's text sets; it joins
    `calls` (and `set -- ~` as a call of "set -")."""
    at = command._unwrap(c.words)[0]
    cmd, args = ("", []) if at is None else (command._base(c.words[at]), c.words[at + 1 :])
    nameref = cmd in _DECLARES and any(a.startswith("-") and "n" in a for a in args)
    carried = c.words[: len(c.words) if at is None else at] + (args if cmd in _DECLARES else [])
    for w in (alt for word in carried for alt in braces(word)):
        _assign_word(sets, w, nameref)  # `env d=~ bash -c …`, `builtin export d=~`
    if at is None:
        return
    calls.append((cmd, args))
    if cmd in _READS and (cmd != "printf" or any(a.startswith("-v") for a in args)):
        for got in [*(a.removeprefix("-v") for a in args), _READS[cmd]]:
            if _NAME.fullmatch(got) or "$" in got:  # `read "$n"`: a name told at run time
                shown, key = (got, "") if "$" in got else (f"${got}", got)
                why = f"{shown}, set from input at run time, which the tripwire cannot evaluate"
                sets.setdefault(key, []).append(Unsure(why))
    elif cmd == "set":
        calls.append(("set -", args[command.shell_opts(args)[1] :]))
    elif cmd == "eval" and depth < command._MAX_DEPTH:
        for got, vs in _read(" ".join(args), parser, depth + 1, None)[1].items():
            sets.setdefault(got, []).extend(vs)


def _called(sets: _Sets, calls: _Calls, defined: set[str]) -> _Sets:
    """`f ~` sets f's $1 (a function the text defines), as `set -- ~` sets $1; a shift may
    move any of them to any place."""
    for cmd, args in calls:
        if cmd in defined or cmd == "set -":
            for at, a in enumerate(args, 1):
                for got in (str(at), "@", "*"):
                    sets.setdefault(got, []).append(a)
    if any(cmd == "shift" for cmd, _ in calls):
        every = [v for got, vs in sets.items() if got.isdigit() for v in vs]
        for got in [got for got in sets if got.isdigit()]:
            sets[got] = list(every)
    return sets


def _redirect_rule(n: Node) -> str | None:
    op = next((ch.type for ch in n.children if not ch.is_named), "")  # the operator
    targets = [ch for ch in n.named_children if ch.type != "file_descriptor"][-1:]
    if op in _WRITES and targets and rules._device(path := _word(targets[0], []).lower()):
        return f"a redirect onto a disk device: `{op} {path}`"
    return None


def _heredoc_backticks(n: Node, depth: int, guard: Guard, check: TextCheck) -> str | None:
    """An unquoted here-document runs the backticks in its body (the parser leaves them)."""
    start = next((_text(ch) for ch in n.children if ch.type == "heredoc_start"), "'")
    bodies = [_text(ch) for ch in n.children if ch.type == "heredoc_body"]
    found = (check(m[1], depth + 1, guard) for b in bodies for m in _BACKTICKS.finditer(b))
    return None if any(q in start for q in "'\"\\") else next(filter(None, found), None)


_WORDS = frozenset({"word", "string_content", "heredoc_body", "raw_string", "concatenation"})
_OPENERS = frozenset({"(", "((", "{", "$(", "`"})  # a group left open: its pipes are unread


def _swallowed(n: Node) -> str | None:
    """Text the parser could not place (an unbalanced quote, a here-document without its end,
    words stranded by a syntax error) holds no command it read: refused as unread. A stray
    operator (`ls && ;`) or a missing `)` (what it closes was read) hides nothing."""
    up = n.parent
    while up is not None and up.type != "arithmetic_expansion":
        up = up.parent
    if up is not None:
        return None  # `$((10#$n))`: arithmetic the parser misreads runs no command
    if n.is_missing:
        hides, n = n.type in ('"', "'", "))"), n.parent or n  # `((a) | b` is not arithmetic
    else:
        hides = any(ch.type in _WORDS or ch.type in _OPENERS for ch in n.children)
        hides |= (
            n.parent is not None
            and n.parent.type != "command"
            and any(ch.type == "variable_name" for ch in n.children)
        )  # `((sudo ls)` misread as arithmetic; in a command it is read as a word
        hides |= n.child_count == 0 and bool(_text(n).strip())
    shown = rules._show(_text(n).lower().split())
    return f"shell code the tripwire could not read: `{shown}`" if hides else None


def _pipelines(order: _Read, guard: Guard, check: Callable[[str], str | None]) -> str | None:
    """A producer anywhere in one stage of a pipeline and its consumer in a later one (a
    download then a shell, however grouped: `{ curl x; } | bash`, `curl x | (bash)`); what
    echo or printf hands a shell is checked as the shell will read it."""
    roles: dict[int, dict[str, str]] = {}  # node id -> roles played anywhere inside it
    found: str | None = None
    for n, c, _ in reversed(order):  # children before their parents
        mine = {} if c is None else rules._roles(c, guard)
        for ch in n.children:
            mine = _joined(roles.get(ch.id, {}), mine)
        if n.type == "pipeline":
            upstream: dict[str, str] = {}
            for ch in n.named_children:
                here = roles.get(ch.id, {})
                if "prints" in upstream and "runs" in here:
                    text = upstream["prints"]  # a crontab's lines: a schedule first
                    cron = command._base(here["runs"].split()[0]) == "crontab"
                    found = check(command._CRON.sub("", text) if cron else text) or found
                for producer, consumer, label in rules._PIPE_RULES:
                    if producer in upstream and consumer in here:
                        found = f"{label}: `{upstream[producer]} | {here[consumer]}`"
                upstream = _joined(here, upstream)
        if mine:
            roles[n.id] = mine
    return found


def _joined(later: dict[str, str], first: dict[str, str]) -> dict[str, str]:
    """Roles of two parts: the first part's names a role, but every printer's text is kept
    (`echo | echo "rm -rf ~" | bash`, `{ echo a; echo b; } | sh`)."""
    both = later | first
    if "prints" in later and "prints" in first:
        both["prints"] = f"{first['prints']}\n{later['prints']}"
    return both


def _ascii(guard: Guard) -> Guard:
    """The guard in the letters of a text read in ASCII: each other character one `x`."""
    x = partial(_NON_ASCII.sub, "x")
    return replace(
        guard,
        targets=tuple((x(t), what) for t, what in guard.targets),
        names=tuple((k, x(v) if isinstance(v, str) else v) for k, v in guard.names),
        cwd=None if guard.cwd is None else x(guard.cwd),
    )


# each node, its command, the cwd there
_Read = list[tuple["Node", command._Cmd | None, str | None]]


def _read(text: str, parser: Parser, depth: int, cwd: str | None) -> tuple[_Read, _Sets]:
    """The text's nodes in pre-order (each command read as words, with the host of the
    substitution it sits in and the cwd an earlier `cd` left), and every name it sets, with
    the words it may set it to (in any order, in any branch)."""
    host_of: dict[int, str | None] = {}
    order: _Read = []
    sets: _Sets = {}
    calls: _Calls = []
    defined: set[str] = set()
    for m in _DEFAULTS.finditer(text.lower()):
        sets.setdefault(m.group(1), []).append(m.group(2))
    # (node, host of the substitution it sits in, redirects from outside that reach it)
    stack: list[tuple[Node, str | None, Sequence[Node]]] = [
        (parser.parse(text.encode("ascii")).root_node, None, ())
    ]
    while stack:  # pre-order, by hand: nesting depth is the input's to choose
        n, host, outer = stack.pop()
        c: command._Cmd | None = None
        if n.type in _SUBST:
            host = host_of.get(n.id)  # None: its output is not an argument of any command
        elif n.type == "command":
            c = _from_command(n, outer, host_of)
            c.host, c.cwd = host, cwd
            cwd = rules._after_cd(c, cwd)  # commands come in text order; subshell scope is ignored
            _command_sets(c, sets, calls, parser, depth)
        else:
            _tree_sets(n, sets, defined)
        order.append((n, c, cwd))
        inner = _inner_redirects(n, n.children, outer)
        stack.extend((ch, host, inner.get(ch.id, ())) for ch in reversed(n.children))
    defs = [a.partition("=") for cmd, args in calls if cmd == "alias" for a in args if "=" in a]
    aliases = {k: v for k, _, v in defs}
    for c in (c for _, c, _ in order if c is not None):  # `alias k=rm` then `k -rf ~`
        if (at := command._unwrap(c.words)[0]) is not None and c.words[at] in aliases:
            c.words[at : at + 1] = aliases[c.words[at]].split()
    for name in _REFS.findall(text.lower()) if "" in sets else []:
        sets.setdefault(name, []).extend(sets[""])
    return order, _called(sets, calls, defined)


def _tree_check(
    text: str, depth: int, guard: Guard, rule: CommandRule, check: TextCheck, pipes: bool = True
) -> str | None:
    """The rule the parsed text trips, if any: `rule` judges each command, `check` a text
    nested in one, and `pipes` adds what flows down a pipe."""
    if depth > command._MAX_DEPTH:
        return (
            f"shell code nested over {command._MAX_DEPTH} levels deep (sh -c, eval, …): too "
            "deep to check"
        )
    # ASCII only: tree-sitter-bash 0.25 can crash the process on some non-ASCII input
    # (tree-sitter-bash#337). No shell syntax is non-ASCII, so each such character becomes
    # one letter. The parser joins a line starting with a backslash to the line before, where bash
    # starts a command: a space before it reads as bash does (inside quotes, one more space).
    ascii_text = _NON_ASCII.sub("x", text).replace("\n\\", "\n \\")
    if ascii_text != text:  # and so do the paths it is compared with
        guard = _ascii(guard)
    order, sets = _read(ascii_text, bash_parser(), depth, guard.cwd)
    guard = assigned(guard, sets)  # followed into every path a destructive command aims at
    for n, c, cwd in order:
        if c is not None:
            why = rule(c, depth, guard)
        elif n.type == "file_redirect":
            why = _redirect_rule(n)
        elif n.type == "ERROR" or n.is_missing:
            why = _swallowed(n)
        elif n.type == "heredoc_redirect":
            why = _heredoc_backticks(n, depth, guard.at(cwd), check)
        else:
            why = None
        if why is not None:
            return why
    if not pipes:
        return None
    return _pipelines(order, guard, lambda text: check(text, depth + 1, guard))


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


def _command_rule(c: command._Cmd, depth: int, guard: Guard = NO_GUARD) -> str | None:
    at, nested = command._unwrap(c.words)
    why: str | None = None
    if at is not None:
        name, args, shown = command._base(c.words[at]), c.words[at + 1 :], rules._show(c.words[at:])
        nested += command._scripts(name, args, c)
        if c.host not in (None, "$") and (printed := rules._printed(name, args)) is not None:
            nested.append(printed)  # `bash <(echo …)`: what it prints is run as code
        if (why := rules._rule(name, args, c.cwd, guard)) is not None:
            why = f"{why}: `{shown}`"
        why = why or _fed_rule(c, depth, guard)
        if why is None and name in command._DOWNLOADERS and c.host is not None:
            run = f"as a command: `$({shown})`" if c.host == "$" else f"by {c.host}: `{shown}`"
            why = f"a download run {run}"
        for sub in rules._find(args, c.cwd, guard)[1] if why is None and name == "find" else []:
            why = why or _command_rule(
                command._Cmd(host=c.host, words=sub, cwd=c.cwd), depth + 1, guard
            )
    inner = guard.at(c.cwd)  # a nested script starts where this command runs
    return why or next((w for s in nested if (w := _check(s, depth + 1, inner)) is not None), None)


def _fed_rule(c: command._Cmd, depth: int, guard: Guard) -> str | None:
    """What xargs (or parallel) runs, judged with what it reads from its input as one more
    operand (`{}`), in each reading its lower-cased options allow: `xargs rm -rf` may reach
    any path, `xargs rm -f` no folder."""
    readings = command.fed_commands(c.words)
    if readings and depth >= command._MAX_DEPTH:
        return f"xargs nested over {command._MAX_DEPTH} levels deep: too deep to check"
    fed = replace(guard.at(c.cwd), fed=True)
    for sub in readings:
        if why := _command_rule(
            command._Cmd(host=c.host, words=[*sub, "{}"], cwd=c.cwd), depth + 1, fed
        ):
            return why
        runner = map(command._base, c.words[: len(c.words) - len(sub)])
        if "parallel" in runner and (why := _check(" ".join([*sub, "{}"]), depth + 1, fed)):
            return why  # parallel hands its words to a shell
    return None


def _check(cmd: str, depth: int, guard: Guard = NO_GUARD) -> str | None:
    return _tree_check(cmd, depth, guard, _command_rule, _check)


def bounded(cmd: str, check: TextCheck, guard: Guard = NO_GUARD) -> str | None:
    """`check` of a whole text, refused unread when too long or too deep; never raises."""
    if len(cmd) > command.MAX_CHARS:
        return f"{len(cmd)} characters of shell, over the {command.MAX_CHARS} the tripwire reads"
    try:
        return check(cmd, 0, guard)
    except RecursionError:
        return "shell code nested too deeply to check"
    except Exception as e:  # fail closed: text the guard cannot read is not let through
        return f"shell code the tripwire could not read ({type(e).__name__})"
