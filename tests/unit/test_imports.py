"""Function-level imports are kept only where they earn it, and each says why.

The rule, read from the source with `ast` and `tokenize`: an import inside a function (at any
depth) needs a `# lazy: <reason>` comment, either trailing its first line or alone on the line
right above it. One such comment covers a block: the run of import statements that follow one
another directly in the same body (nothing between them but blank lines) is judged by its first
statement. Everything else belongs at the top of the module."""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

from tests import sourcetree

SRC = Path(__file__).resolve().parents[2] / "src" / "looop"
MARK = "# lazy:"

_Import = ast.Import | ast.ImportFrom
_Scope = ast.FunctionDef | ast.AsyncFunctionDef


def _comments(text: str) -> dict[int, str]:
    """Line number -> the comment on it (tokenize, so a `#` inside a string is not one)."""
    out: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.COMMENT:
            out[tok.start[0]] = tok.string
    return out


def _has_reason(comment: str | None) -> bool:
    return comment is not None and comment.startswith(MARK) and bool(comment[len(MARK) :].strip())


def _reasoned(node: ast.stmt, lines: list[str], comments: dict[int, str]) -> bool:
    if _has_reason(comments.get(node.lineno)):
        return True
    above = node.lineno - 1
    return above >= 1 and lines[above - 1].lstrip().startswith("#") and _has_reason(comments[above])


def _block_heads(body: list[ast.stmt]) -> dict[int, ast.stmt]:
    """id(import) -> the first import of its block in this statement list."""
    heads: dict[int, ast.stmt] = {}
    head: ast.stmt | None = None
    for stmt in body:
        if isinstance(stmt, _Import):
            head = head or stmt
            heads[id(stmt)] = head
        else:
            head = None
    return heads


def unreasoned(text: str, tree: ast.Module | None = None) -> list[int]:
    """Line numbers of function-level imports in `text` (parsed as `tree` when given) that give
    no `# lazy:` reason."""
    tree = tree or ast.parse(text)
    lines = text.splitlines()
    # tokenized only for a module that has a function-level import: most have none, and
    # tokenizing all of src was most of this test's 3.5 s
    comments: dict[int, str] | None = None

    def reasoned(head: ast.stmt) -> bool:
        nonlocal comments
        if comments is None:
            comments = _comments(text)
        return _reasoned(head, lines, comments)

    bad: list[int] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            value = getattr(node, field, None)
            if not isinstance(value, list):
                continue
            stmts = [s for s in value if isinstance(s, ast.stmt)]
            heads = _block_heads(stmts)
            for stmt in stmts:
                head = heads.get(id(stmt))
                if in_function and head is not None and not reasoned(head):
                    bad.append(stmt.lineno)
            for child in value:
                if isinstance(child, ast.AST):
                    visit(child, in_function or isinstance(child, _Scope))

    visit(tree, False)
    return sorted(bad)


def test_every_function_level_import_in_src_says_why_it_is_lazy() -> None:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for line in unreasoned(sourcetree.text(path), sourcetree.tree(path)):
            found.append(f"{path.relative_to(SRC.parent)}:{line}")
    assert found == [], "move these to the top of the module, or give a `# lazy: <reason>`"


def test_the_rule_catches_a_bare_function_import_and_accepts_the_reasoned_forms() -> None:
    text = """\
import os


def plain():
    import json
    return json


def trailing():
    import json  # lazy: only a broken config pays for it
    return json


def above():
    # lazy: hot path: status must not load click
    import click

    from looop import x
    return click, x


def broken_block():
    import re  # lazy: rare
    y = 1
    import shlex
    return re, shlex, y


def empty_reason():
    import re  # lazy:
    return re


def inner():
    def nested():
        if True:
            import difflib
        return difflib
    return nested


class K:
    def method(self):
        try:
            pass
        except OSError:
            import errno
        return errno

    import typing
"""
    assert unreasoned(text) == [5, 25, 30, 37, 47]


def test_a_reason_in_a_string_or_far_above_does_not_count() -> None:
    text = """\
def f():
    s = "# lazy: not a comment"; import json
    return s, json


def g():
    # lazy: too far away
    x = 1
    import json
    return x, json
"""
    assert unreasoned(text) == [2, 9]
