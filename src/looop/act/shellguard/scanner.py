"""The older small scanner: words, quotes, operators and here-documents of one command line,
and the simple commands they form (substitutions read as nested levels)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from looop.act.shellguard.command import _base, _Cmd, _command_at
from looop.act.shellguard.tables import _OP_CHARS, _OPS, _REDIRECTS, _SHELLS, _SOURCES


class Tok(NamedTuple):
    text: str
    kind: str  # "word", "op", or "body" (a here-document's lines)
    glued: bool = False  # an op with no space before it (`$(`, `<(`, `2>`)


class _Unbalanced(ValueError):
    pass


class _Scanner:
    """Words and operators of one lower-cased command line; here-document bodies kept apart."""

    def __init__(self, text: str, quotes: bool) -> None:
        self.s = text
        self.quotes = quotes
        self.i = 0
        self.out: list[Tok] = []
        self.word: list[str] = []
        self.in_word = False
        self.gap = True
        self.heredocs: list[tuple[str, bool]] = []  # (delimiter, strip leading tabs)
        self.delim_tabs: bool | None = None  # set while the next word is a heredoc delimiter
        self.unterminated = False  # one heredoc ran to the end: read everything after as commands

    def end_word(self) -> None:
        if not self.in_word:
            return
        text = "".join(self.word)
        self.word.clear()
        self.in_word = False
        self.gap = False
        self.out.append(Tok(text, "word"))
        if self.delim_tabs is not None:
            self.heredocs.append((text, self.delim_tabs))
            self.delim_tabs = None

    def quoted(self, q: str) -> None:
        s, i, n = self.s, self.i + 1, len(self.s)
        while True:
            if i >= n:
                raise _Unbalanced
            c = s[i]
            if c == q:
                break
            if q == '"' and c == "\\" and i + 1 < n and s[i + 1] in '"\\$`':
                self.word.append(s[i + 1])
                i += 2
                continue
            self.word.append(c)
            i += 1
        self.i = i + 1
        self.in_word = True

    def skip_bodies(self) -> None:
        """After the newline that ends a `<<` line: its bodies become body tokens."""
        s, pos = self.s, self.i
        bodies: list[str] = []
        for delim, tabs in self.heredocs:
            start = pos
            while True:
                if pos >= len(s):
                    # Unterminated: read the rest as commands rather than skip it, and stop
                    # looking for bodies (another search to the end would make this quadratic).
                    self.heredocs.clear()
                    self.unterminated = True
                    return
                j = s.find("\n", pos)
                end = len(s) if j < 0 else j
                line_start, line = pos, s[pos:end]
                pos = end + 1
                if (line.lstrip("\t") if tabs else line) == delim:
                    bodies.append(s[start:line_start])
                    break
        self.heredocs.clear()
        self.out.extend(Tok(b, "body") for b in bodies)
        self.i = min(pos, len(s))

    def run(self) -> list[Tok]:
        s, n = self.s, len(self.s)
        while self.i < n:
            c = s[self.i]
            if c == "\\":
                self.word.append(s[self.i + 1 : self.i + 2])
                self.in_word = True
                self.i += 2
            elif c in "'\"":
                if self.quotes:
                    self.quoted(c)
                else:
                    self.in_word = True
                    self.i += 1
            elif c in " \t\r":
                self.end_word()
                self.gap = True
                self.i += 1
            elif c == "#" and not self.in_word:
                j = s.find("\n", self.i)
                self.i = n if j < 0 else j
                self.gap = True
            elif c in _OP_CHARS:
                self.end_word()
                op = next(o for o in _OPS if s.startswith(o, self.i))
                self.i += len(op)
                self.out.append(Tok(op, "op", glued=not self.gap))
                self.gap = False
                heredoc = op in ("<<", "<<-") and not self.unterminated
                self.delim_tabs = op == "<<-" if heredoc else None
                if op == "\n" and self.heredocs:
                    self.skip_bodies()
            else:
                self.word.append(c)
                self.in_word = True
                self.i += 1
        self.end_word()
        return self.out


def tokenise(cmd: str) -> list[Tok]:
    """Lower-cased tokens; an unbalanced quote falls back to ignoring quotes, never to passing."""
    text = cmd.lower().replace("\\\n", "")
    try:
        return _Scanner(text, quotes=True).run()
    except _Unbalanced:
        return _Scanner(text, quotes=False).run()


def _commands(toks: Sequence[Tok]) -> list[_Cmd]:
    """Simple commands in the order they end; substitutions are read as nested levels."""
    done: list[_Cmd] = []
    stack: list[tuple[_Cmd, str | None, str]] = []  # (enclosing command, its host, closer)
    awaiting_body: list[_Cmd] = []
    cur, host = _Cmd(), None

    def flush(c: _Cmd) -> None:
        if c.words or c.redirects:
            done.append(c)

    i = 0
    while i < len(toks):
        t = toks[i]
        i += 1
        if t.kind == "body":
            if awaiting_body:
                awaiting_body.pop(0).bodies.append(t.text)
        elif t.kind == "word":
            cur.words.append(t.text)
        elif t.text in _REDIRECTS:
            i = _redirect(toks, i, cur, awaiting_body)
        elif t.text == "(" and i < len(toks) and toks[i].text == ")" and toks[i].kind == "op":
            flush(cur)  # `name() { …; }`: a function body follows
            cur = _Cmd(before="(", host=host)
            i += 1
        elif t.text == "(" or (t.text == "`" and not (stack and stack[-1][2] == "`")):
            inner = _inner_host(t, toks[i - 2] if i >= 2 else None, cur, host)
            stack.append((cur, host, ")" if t.text == "(" else "`"))
            cur, host = _Cmd(before=t.text, host=inner), inner
        elif t.text in (")", "`"):
            flush(cur)
            if stack and stack[-1][2] == t.text:
                cur, host, _ = stack.pop()
            else:
                cur = _Cmd(before=t.text, host=host)
        else:
            flush(cur)
            cur = _Cmd(before=t.text, host=host)
    flush(cur)
    while stack:
        flush(stack.pop()[0])
    return done


def _redirect(toks: Sequence[Tok], i: int, cur: _Cmd, awaiting_body: list[_Cmd]) -> int:
    """The redirect just read (at i - 1) and its target into `cur`; the index after them."""
    t = toks[i - 1]
    prev = toks[i - 2] if i >= 2 else None
    fd = t.glued and prev is not None and prev.kind == "word" and prev.text.isdigit()
    if fd and cur.words and prev is not None and cur.words[-1] == prev.text:
        cur.words.pop()  # `2>`: a file descriptor, not an argument
    target = ""
    if i < len(toks) and toks[i].kind == "word":
        target = toks[i].text
        i += 1
    cur.redirects.append((t.text, target))
    if t.text in ("<<", "<<-"):
        awaiting_body.append(cur)
    return i


def _inner_host(t: Tok, prev: Tok | None, cur: _Cmd, host: str | None) -> str | None:
    """Who runs the text of a level opened by `t`: a subshell keeps its host; a substitution
    is run by the shell, source or eval whose argument it is, is itself the command word
    ("$"), or is only an argument (None)."""
    if not (
        t.text == "`"
        or (
            t.glued
            and prev is not None
            and (
                (prev.kind == "word" and prev.text.endswith("$"))
                or (prev.kind == "op" and prev.text in ("<", ">"))
            )
        )
    ):
        return host
    at = _command_at(cur.words)
    if at is not None:
        inner = _base(cur.words[at])
        return inner if inner in _SHELLS or inner in _SOURCES or inner == "eval" else None
    return "$" if not cur.words else None  # "$": the substitution is the command word
