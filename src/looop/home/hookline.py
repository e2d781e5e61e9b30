"""A shell hook's `{{message}}` / `{{id}}` placeholders: each becomes a quoted reference to the
variable that carries the text, and only where it stands as a shell word of its own outside
any quotes. Anywhere else (inside "…", '…', `…`, a here-document, glued to other characters)
the line is refused: a reference spliced into a string that another shell runs (`bash -c "echo
{{message}}"`, `ssh host "…"`, `eval`) would hand the untrusted text to that shell as code."""

from __future__ import annotations

# Placeholder -> the environment variable the hook gets the text in.
PLACEHOLDERS = {"{{message}}": "LOOOP_MESSAGE", "{{id}}": "LOOOP_ID"}
_EDGE = frozenset(" \t\n;&|()<>")  # what may sit either side of a whole word
_SEPARATORS = frozenset(";&|\n")  # a new simple command starts after one


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words that leave the next word in command position.
_KEYWORDS = _words("! { } if then else elif fi do done while until")
# Commands that run the command their first plain argument names (options and numbers
# skipped), with their short options that take a value.
_WRAPPERS = {
    **dict.fromkeys(_words("nohup setsid command builtin time"), ""),
    **{"sudo": "ugCDhprtU", "doas": "uC", "env": "uCS", "nice": "n", "ionice": "cnp"},
    **{"timeout": "sk", "stdbuf": "ioe", "exec": "a", "xargs": "adEIiLlnPs"},
}
# Commands that read an argument as shell code, a variable name (whose subscript bash
# evaluates: `read "a[$(…)]"`), arithmetic, or a script, locally or on another host.
_CODE = _words(
    "eval let source . declare typeset local readonly export unset read mapfile readarray "
    "test [ [[ trap alias getopts wait enable coproc bash sh dash zsh ksh mksh fish csh "
    "tcsh busybox su ssh"
)
# Programs that run what comes in on their stdin (a placeholder piped into one is code).
_STDIN_CODE = _words(
    "bash sh dash zsh ksh mksh fish csh tcsh busybox su python python3 perl ruby node php lua"
)


class HookLineError(ValueError):
    """A placeholder that is not a whole shell word; the message says how to write it."""


def _refusal(placeholder: str, where: str, code: bool = False) -> HookLineError:
    var = PLACEHOLDERS[placeholder]
    if code:
        return HookLineError(
            f"{placeholder} sits {where}: bash would run the text; pass it, as a shell word of "
            f'its own, only to a command that reads it as data (notify-send looop "${var}")'
        )
    return HookLineError(
        f"{placeholder} sits {where}: write it as a shell word of its own (notify-send looop "
        f'{placeholder}), or use "${var}" (the text is in the hook\'s environment; inside '
        f"bash -c or ssh keep that in single quotes: bash -c 'echo \"${var}\"')"
    )


def _placeholder_at(line: str, i: int) -> str | None:
    for placeholder in PLACEHOLDERS:
        if line.startswith(placeholder, i):
            return placeholder
    return None


def _form_at(line: str, i: int) -> tuple[str, int] | None:
    """The placeholder at `i`, bare or alone inside one pair of quotes, and the form's length."""
    for placeholder in PLACEHOLDERS:
        for q in ("", '"', "'"):
            if line.startswith(q + placeholder + q, i):
                return placeholder, len(placeholder) + 2 * len(q)
    return None


def _edge(line: str, i: int) -> bool:
    return i < 0 or i >= len(line) or line[i] in _EDGE


def _no_placeholder(text: str, where: str) -> None:
    for placeholder in PLACEHOLDERS:
        if placeholder in text:
            raise _refusal(placeholder, where)


def _quote_end(line: str, i: int, backslash: bool) -> int:
    """The index after the single quote closing the string whose opening quote ends at `i`."""
    while i < len(line):
        if backslash and line[i] == "\\":
            i += 2
            continue
        if line[i] == "'":
            return i + 1
        i += 1
    return len(line)


def _heredoc_word(line: str, i: int) -> tuple[str, bool, int]:
    """After `<<` at i: the delimiter (quotes removed), whether tabs are stripped, the end."""
    strip = line.startswith("-", i)
    i += 1 if strip else 0
    while i < len(line) and line[i] in " \t":
        i += 1
    start = i
    while i < len(line) and line[i] not in _EDGE:
        i += 1
    word = "".join(c for c in line[start:i] if c not in "'\"\\")
    return word, strip, i


def _heredoc_bodies(line: str, i: int, pending: list[tuple[str, bool]]) -> int:
    """Skip the bodies of the here-documents opened on the line that ended before `i`."""
    for word, strip in pending:
        while i < len(line):
            end = line.find("\n", i)
            end = len(line) if end < 0 else end + 1
            body_line = line[i:end]
            i = end
            text = body_line.rstrip("\n")
            if (text.lstrip("\t") if strip else text) == word:
                break
            _no_placeholder(body_line, "inside a here-document")
    pending.clear()
    return i


class _Cmd:
    """The simple command being read at one nesting level: its name once known, its words."""

    def __init__(self) -> None:
        self.name: str | None = None
        self.wrapper = ""  # after a wrapper: its options and numbers are not the command
        self.skip = False  # the next word is the value of the wrapper's option
        self.words: list[str] = []
        self.taint: str | None = None  # a placeholder among its words or substitutions
        self.fed: str | None = None  # a placeholder in a command piped into this one

    def word(self, word: str, redirect: bool) -> None:
        if self.fed and (word in _STDIN_CODE and (self.name is None or self.name == "ssh")):
            raise _refusal(self.fed, f"piped into {word}, which runs its input", code=True)
        if self.name is not None:
            self.words.append(word)
            return
        skipped = self.skip or redirect or _assignment(word) or word in _KEYWORDS
        self.skip = False
        if self.wrapper and not skipped and (word[:1] == "-" or word[:1].isdigit()):
            skipped = True
            self.skip = len(word) == 2 and word[1] in _WRAPPERS[self.wrapper]
        if not skipped and word in _WRAPPERS:
            self.wrapper = word
        elif not skipped:
            self.name = word

    def refusal(self, placeholder: str, redirect: bool) -> HookLineError | None:
        """Why the placeholder may not be the next word of this command, or None."""
        if self.name is None and not redirect:
            return _refusal(placeholder, "where the shell runs it as a command", code=True)
        if _may_vanish(self.name or "x"):  # `$x printf {{message}}`: printf may be the command
            return _refusal(
                placeholder, f"after {self.name}, which may expand to nothing", code=True
            )
        if self.name in _CODE:
            return _refusal(placeholder, f"in an argument of {self.name}", code=True)
        last = self.words[-1] if self.words else ""
        if last[:1] == "-" and last[1:].isalpha() and last.endswith("c"):
            return _refusal(placeholder, f"after {last}", code=True)
        if self.name == "printf" and any(w.startswith("-v") for w in self.words):
            return _refusal(placeholder, "in printf -v", code=True)
        if self.name == "printf" and all(w[:1] == "-" and w != "--" for w in self.words):
            return _refusal(placeholder, "as printf's format or option (-v)", code=True)
        return None


def _may_vanish(name: str) -> bool:
    """Whether a command name is expansions only (`$x`, `${x}`, `$(…)`, `` `…` ``): an empty
    one leaves the next word as the command."""
    while name:
        if name.startswith("${"):
            end = name.find("}") + 1
        elif name.startswith("$("):
            end = name.rfind(")") + 1
        elif name[:1] == "$":
            end = 1 + next(
                (k for k, c in enumerate(name[1:]) if not c.isalnum() and c != "_"), len(name) - 1
            )
        elif name[:1] == "`":
            end = name.find("`", 1) + 1
        else:
            return False
        name = name[end:] if end > 0 else ""
    return True


def _assignment(word: str) -> bool:
    name, eq, _ = word.partition("=")
    return bool(eq) and name.rstrip("+").split("[", 1)[0].isidentifier()


def _literal_word(line: str, i: int) -> str:
    """The word starting at i as a command name reads: up to the next blank or operator."""
    end = i
    while end < len(line) and line[end] not in _EDGE:
        end += 1
    return "".join(c for c in line[i:end] if c not in "'\"\\")


def _fd_number(line: str, i: int) -> bool:
    """Whether the word at i is a redirection's descriptor (`2>`, `{fd}>`), not a command."""
    end = i
    while end < len(line) and line[end] not in _EDGE:
        end += 1
    word = line[i:end]
    named = word[:1] == "{" and word[-1:] == "}" and word[1:-1].isidentifier()
    return end < len(line) and line[end] in "<>" and (word.isdigit() or named)


def _redirect(line: str, i: int) -> bool:
    """Whether the word at i is the target of a redirection (`> file`), not a command word."""
    j = i - 1
    while j >= 0 and line[j] in " \t":
        j -= 1
    if j >= 1 and line[j] == "&" and line[j - 1] in "<>":
        return True  # 2>&1, <&3
    return j >= 0 and line[j] in "<>"


class _Scan:
    """One pass over a hook line, copying it with the placeholders made references."""

    def __init__(self, line: str) -> None:
        self.line = line
        self.out: list[str] = []
        # Open contexts: '"' a "…" string, '`' backticks, '(' a subshell or $(…), '((' arithmetic.
        self.stack: list[str] = []
        self.cmds = [_Cmd()]  # one per nesting level, aligned with the stack
        self.taints: list[str | None] = [None]  # a placeholder seen at that level
        self.pending: list[tuple[str, bool]] = []  # here-documents whose bodies start next line

    def push(self, ctx: str) -> None:
        self.stack.append(ctx)
        self.cmds.append(_Cmd())
        self.taints.append(None)

    def pop(self) -> None:
        """Close a context; a placeholder inside a subshell or substitution taints the command
        around it, which may not run the substitution's output as a command or code."""
        ctx = self.stack.pop()
        self.cmds.pop()
        taint = self.taints.pop()
        if taint is None or ctx not in ("(", "$("):
            return
        outer = self.cmds[-1]
        if ctx == "$(" and (outer.name is None or outer.name[:1] in "$`" or outer.name in _CODE):
            raise _refusal(taint, "in a substitution whose output runs", code=True)
        outer.taint = taint
        self.taints[-1] = self.taints[-1] or taint

    def placeholder(self, i: int) -> int:
        """The index after a placeholder form at i (copied as a reference), or i when none."""
        line, ctx = self.line, self.stack[-1] if self.stack else ""
        if ctx == '"':
            placeholder = _placeholder_at(line, i)
            if placeholder:
                raise _refusal(placeholder, 'inside a "…" string')
            return i
        form = _form_at(line, i)
        if form is None:
            return i
        placeholder, length = form
        if "((" in self.stack:
            raise _refusal(placeholder, "inside arithmetic", code=True)
        if '"' in self.stack or "`" in self.stack:
            raise _refusal(placeholder, "inside quotes or backticks")
        if not (_edge(line, i - 1) and _edge(line, i + length)):
            raise _refusal(placeholder, "inside a longer shell word")
        redirect = _redirect(line, i)
        why = self.cmds[-1].refusal(placeholder, redirect)
        if why is not None:
            raise why
        self.cmds[-1].word(placeholder, redirect)
        self.cmds[-1].taint = self.taints[-1] = placeholder
        self.out.append(f'"${PLACEHOLDERS[placeholder]}"')
        return i + length

    def step(self, i: int) -> int:
        """Copy the shell syntax at i (one character or one quoted string); the next index."""
        line, ctx = self.line, self.stack[-1] if self.stack else ""
        c = line[i]
        start = i
        i += 1
        if ctx != '"' and c not in _EDGE and c != "#" and _edge(line, start - 1):
            redirect = _redirect(line, start) or _fd_number(line, start)
            self.cmds[-1].word(_literal_word(line, start), redirect)
        if c == "\\":
            escaped = _placeholder_at(line, i)
            if escaped:
                raise _refusal(escaped, "after a backslash")
            i += 1
        elif ctx == '"':
            if c == '"':
                self.pop()
            elif c == "`":
                self.push(c)
            elif c == "$" and line.startswith("(", i):
                self.push("$(")
                i += 1
        elif c == "'" or (c == "$" and line.startswith("'", i)):
            i = _quote_end(line, i + (c == "$"), backslash=c == "$")
            _no_placeholder(line[start:i], "inside a '…' string")
        elif c == "#" and _edge(line, start - 1):
            end = line.find("\n", i)
            i = len(line) if end < 0 else end  # a comment, copied as it is
        elif c == "(" and line.startswith("(", i):
            self.push("((")
            i += 1
        elif ctx == "((" and c == ")" and line.startswith(")", i):
            self.pop()
            i += 1
        elif c == "(":
            self.push("$(" if start and line[start - 1] in "$<>" else "(")
        elif c == '"' or (c == "`" and ctx != "`"):
            self.push(c)
        elif (c == "`" and ctx == "`") or (c == ")" and ctx in ("(", "$(")):
            self.pop()
        elif c == ")":
            self.cmds[-1] = _Cmd()  # a case pattern's end: a command starts after it
        elif c == "<" and line.startswith("<<", start) and not line.startswith("<<<", start):
            word, strip, i = _heredoc_word(line, start + 2)
            self.pending.append((word, strip))
        elif c == "<" and line.startswith("<<<", start):
            i = start + 3
        elif c == "&" and (line[start - 1 : start] in ("<", ">", "|") or line[i : i + 1] == ">"):
            pass  # part of a redirection (2>&1, &>) or of |&, not a separator
        elif c in _SEPARATORS:
            before = self.cmds[-1]
            self.cmds[-1] = _Cmd()
            if c == "|" and line[i : i + 1] != "|" and line[start - 1 : start] != "|":
                self.cmds[-1].fed = before.taint or before.fed
            if c == "\n" and self.pending:
                i = _heredoc_bodies(line, i, self.pending)
        self.out.append(line[start:i])
        return i


def hook_line(line: str) -> str:
    """The line with every whole-word placeholder replaced by `"$LOOOP_MESSAGE"` /
    `"$LOOOP_ID"`; HookLineError when one stands anywhere else, or where the shell would read
    the text as a command, code, a variable name or arithmetic. A line without placeholders
    comes back unchanged, whatever its quoting."""
    if "{{" not in line:
        return line
    scan = _Scan(line)
    i = 0
    while i < len(line):
        after = scan.placeholder(i)
        i = after if after > i else scan.step(i)
    return "".join(scan.out)
