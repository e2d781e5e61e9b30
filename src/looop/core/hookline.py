"""A shell hook's `{{message}}` / `{{id}}` placeholders: each becomes a quoted reference to the
variable that carries the text, and only where it stands as a shell word of its own outside
any quotes. Anywhere else (inside "…", '…', `…`, a here-document, glued to other characters)
the line is refused: a reference spliced into a string that another shell runs (`bash -c "echo
{{message}}"`, `ssh host "…"`, `eval`) would hand the untrusted text to that shell as code."""

from __future__ import annotations

# Placeholder -> the environment variable the hook gets the text in.
PLACEHOLDERS = {"{{message}}": "LOOOP_MESSAGE", "{{id}}": "LOOOP_ID"}
_EDGE = frozenset(" \t\n;&|()<>")  # what may sit either side of a whole word


class HookLineError(ValueError):
    """A placeholder that is not a whole shell word; the message says how to write it."""


def _refusal(placeholder: str, where: str) -> HookLineError:
    var = PLACEHOLDERS[placeholder]
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


def hook_line(line: str) -> str:
    """The line with every whole-word placeholder replaced by `"$LOOOP_MESSAGE"` /
    `"$LOOOP_ID"`; HookLineError when one stands anywhere else. A line without placeholders
    comes back unchanged, whatever its quoting."""
    if "{{" not in line:
        return line
    out: list[str] = []
    # Open contexts: '"' a double-quoted string, '`' backticks, '(' a subshell.
    stack: list[str] = []
    pending: list[tuple[str, bool]] = []  # here-documents whose bodies start after this line
    i = 0
    while i < len(line):
        ctx = stack[-1] if stack else ""
        quoted = '"' in stack or "`" in stack
        if ctx == '"':
            placeholder = _placeholder_at(line, i)
            if placeholder:
                raise _refusal(placeholder, 'inside a "…" string')
        else:
            form = _form_at(line, i)
            if form:
                placeholder, length = form
                if quoted:
                    raise _refusal(placeholder, "inside quotes or backticks")
                if not (_edge(line, i - 1) and _edge(line, i + length)):
                    raise _refusal(placeholder, "inside a longer shell word")
                out.append(f'"${PLACEHOLDERS[placeholder]}"')
                i += length
                continue
        c = line[i]
        start = i
        i += 1
        if c == "\\":
            escaped = _placeholder_at(line, i)
            if escaped:
                raise _refusal(escaped, "after a backslash")
            i += 1
        elif ctx == '"':
            if c == '"':
                stack.pop()
            elif c == "`":
                stack.append(c)
            elif c == "$" and line.startswith("(", i):
                stack.append("(")
                i += 1
        elif c == "'" or (c == "$" and line.startswith("'", i)):
            i = _quote_end(line, i + (c == "$"), backslash=c == "$")
            _no_placeholder(line[start:i], "inside a '…' string")
        elif c == "#" and _edge(line, start - 1):
            end = line.find("\n", i)
            i = len(line) if end < 0 else end  # a comment, copied as it is
        elif c == '"' or (c == "`" and ctx != "`") or c == "(":
            stack.append(c)
        elif (c == "`" and ctx == "`") or (c == ")" and ctx == "("):
            stack.pop()
        elif c == "<" and line.startswith("<<", start) and not line.startswith("<<<", start):
            word, strip, i = _heredoc_word(line, start + 2)
            pending.append((word, strip))
        elif c == "<" and line.startswith("<<<", start):
            i = start + 3
        elif c == "\n" and pending:
            i = _heredoc_bodies(line, i, pending)
        out.append(line[start:i])
    return "".join(out)
