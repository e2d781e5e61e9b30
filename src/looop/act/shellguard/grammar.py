"""tree-sitter's bash grammar: the tripwire's one heavy dependency, loaded when it first reads."""

from __future__ import annotations

import tree_sitter_bash
from tree_sitter import Language, Parser


def bash_parser() -> Parser:
    return Parser(Language(tree_sitter_bash.language()))
