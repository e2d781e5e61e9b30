"""The product's source read once per test run: the house-wide unit tests (layering, sizes,
lazy imports, event names) each walk every module, and parsing 250 files again for each took
seconds of `make check`."""

from __future__ import annotations

import ast
import functools
from pathlib import Path


@functools.cache
def text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


@functools.cache
def tree(path: Path) -> ast.Module:
    """The module's syntax tree: shared, so a caller reads it and never changes it."""
    return ast.parse(text(path))


@functools.cache
def nodes(path: Path) -> tuple[ast.AST, ...]:
    """Every node of the module's tree in ast.walk's order, walked once per run: the house-wide
    tests walk each module several times, and the walk, not the parse, took most of their time."""
    return tuple(ast.walk(tree(path)))
