"""The brief's rule edits: one added last, one replaced or dropped by its head."""

from __future__ import annotations

from looop.workers.workspace import last_rule, replace_rule

BRIEF = "# head\n\n- **A**: one\n  more of A.\n- **B**: two.\n- **C**: three.\n\n---\n\ntask\n"


def test_a_rule_is_replaced_whole_and_the_others_kept() -> None:
    got = replace_rule(BRIEF, "**A**", "**A**: new.")
    assert got == BRIEF.replace("- **A**: one\n  more of A.", "- **A**: new.")
    assert replace_rule(BRIEF, "**C**", "**C**: 3.") == BRIEF.replace("three.", "3.")


def test_a_rule_is_dropped_without_a_gap() -> None:
    assert replace_rule(BRIEF, "**B**", None) == BRIEF.replace("- **B**: two.\n", "")


def test_a_missing_head_changes_nothing() -> None:
    assert replace_rule(BRIEF, "**Z**", "x") == BRIEF
    assert replace_rule(BRIEF, "**B", "x") == replace_rule(BRIEF, "**B**", "x")


def test_a_rule_added_last_goes_before_the_closing_part() -> None:
    assert last_rule(BRIEF, "**D**: four.").endswith(
        "- **C**: three.\n- **D**: four.\n\n---\n\ntask\n"
    )
