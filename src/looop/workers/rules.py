"""The worker contract's one edit: a rule added last (before its closing `---` part)."""

from __future__ import annotations


def last_rule(contract: str, rule: str) -> str:
    """The contract with `rule` as its last "- " rule: before the closing `\\n---\\n` part, or
    at the end when it has none."""
    head, sep, tail = contract.rpartition("\n---\n")
    if not sep:
        head, sep, tail = contract.rstrip("\n"), "\n", ""
    return f"{head.rstrip()}\n- {rule}\n{sep}{tail}"
