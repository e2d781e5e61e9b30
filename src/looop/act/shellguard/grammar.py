"""tree-sitter's bash grammar: the parsed check's one heavy, optional extra. Only that check
loads this module (check.py falls back to the scanner when it cannot)."""

from __future__ import annotations

import tree_sitter_bash
from tree_sitter import Language, Parser


def bash_parser() -> Parser:
    return Parser(Language(tree_sitter_bash.language()))
