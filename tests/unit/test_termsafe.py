"""Untrusted text never acts on the terminal it is printed to."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from looop.core.termsafe import for_terminal, line_for_terminal


def test_osc_title_and_clipboard_writes_are_shown_not_sent() -> None:
    title = "\x1b]0;pwned\x07hello"
    clip = "\x1b]52;c;ZWNobyBoaQ==\x1b\\"
    assert for_terminal(title) == "\\x1b]0;pwned\\x07hello"
    assert "\x1b" not in for_terminal(clip)
    assert for_terminal(clip).startswith("\\x1b]52;")


def test_text_newlines_tabs_and_unicode_are_kept() -> None:
    text = "línea 1\n\tcafé ✓ 日本"
    assert for_terminal(text) == text


def test_bidi_override_and_c1_controls_are_visible() -> None:
    assert for_terminal("a\u202eb") == "a\\u202eb"
    assert for_terminal("a\x9bb") == "a\\x9bb"  # C1 CSI
    assert for_terminal("a\ud800b") == "a\\ud800b"  # lone surrogate from JSON


def test_one_line_form_hides_no_line_break() -> None:
    assert line_for_terminal("a\nb\tc\u2028d") == "a\\nb\\tc\\u2028d"


@given(st.text())
def test_no_control_character_survives(text: str) -> None:
    out = for_terminal(text)
    for ch in out:
        cp = ord(ch)
        assert ch in "\n\t" or (cp >= 0x20 and not 0x7F <= cp <= 0x9F)
        assert not 0xD800 <= cp <= 0xDFFF
    assert "\n" not in line_for_terminal(text)
