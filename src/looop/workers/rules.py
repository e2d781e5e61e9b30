"""The worker contract's one edit: a rule added last (before its closing `---` part)."""

from __future__ import annotations


def last_rule(contract: str, rule: str) -> str:
    """The contract with `rule` as its last "- " rule: before the closing `\\n---\\n` part, or
    at the end when it has none."""
    head, sep, tail = contract.rpartition("\n---\n")
    if not sep:
        head, sep, tail = contract.rstrip("\n"), "\n", ""
    return f"{head.rstrip()}\n- {rule}\n{sep}{tail}"


def replace_rule(contract: str, head: str, rule: str | None) -> str:
    """The contract with its rule that begins `- {head}` (up to the next rule, a blank line
    or the closing part) replaced by `- {rule}`, or dropped when `rule` is None; unchanged
    when it has no such rule."""
    start = contract.find(f"\n- {head}")
    if start < 0:
        return contract
    start += 1
    ends = [contract.find(m, start + 2) for m in ("\n- ", "\n\n", "\n---")]
    end = min((e for e in ends if e >= 0), default=len(contract))
    new = "" if rule is None else f"- {rule}"
    if rule is None and end < len(contract) and contract.startswith("\n- ", end):
        end += 1  # the next rule takes the dropped one's place
    return contract[:start] + new + contract[end:]


def place_note(contract: str, note: str) -> str:
    """The contract with the note on where its code work goes as its last rule, in place of
    the rule it replaces: it makes no worktree of its own."""
    start = contract.find("- **Code work**")
    if start >= 0:
        end = contract.find("\n- ", start)
        contract = contract[:start] + contract[end + 1 :] if end >= 0 else contract
    return last_rule(contract, note)
