"""Untrusted text never acts on the terminal it is printed to."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from looop.home import terminal
from looop.home.terminal import UNSAFE_RANGES, for_terminal, line_for_terminal

# The rule as a regular expression: the oracle the re-free filters are checked against.
_CLASS = "[" + "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in UNSAFE_RANGES) + "]"
_UNSAFE_BUT_SGR = re.compile("\x1b\\[[0-9;:]{0,64}m|\r\n|" + _CLASS)


def _oracle(text: str) -> str:
    return _UNSAFE_BUT_SGR.sub(lambda m: m[0] if len(m[0]) > 1 else f"\\u{ord(m[0]):04x}", text)


def _oracle_all(text: str) -> str:
    def shown(m: re.Match[str]) -> str:
        return f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}"

    return re.sub(_CLASS, shown, text)


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


def test_the_stream_filter_keeps_colour_and_crlf_but_nothing_else() -> None:
    import io

    from looop.home.terminal import SafeStream

    buf = io.StringIO()
    s = SafeStream(buf)  # type: ignore[arg-type]
    s.write("\x1b[1m\x1b[32mok\x1b[0m\r\n")
    s.write("\x1b]0;pwned\x07 \x1b[2J \x1b[H \x9b31m \u202e bad\rover")
    out = buf.getvalue()
    assert out.startswith("\x1b[1m\x1b[32mok\x1b[0m\r\n")
    rest = out.split("\r\n", 1)[1]
    assert "\x1b" not in rest and "\x07" not in rest and "\x9b" not in rest and "\r" not in rest
    assert "\\u001b]0;pwned\\u0007" in rest and "\\u202e" in rest


@given(st.text())
def test_the_stream_filter_keeps_json_exact(text: str) -> None:
    import io
    import json

    from looop.home.terminal import SafeStream

    buf = io.StringIO()
    SafeStream(buf).write(json.dumps({"t": text}, ensure_ascii=False))  # type: ignore[arg-type]
    assert json.loads(buf.getvalue()) == {"t": text}
    for ch in buf.getvalue():
        assert ch in "\n\t" or (ord(ch) >= 0x20 and not 0x7F <= ord(ch) <= 0x9F)


_HOSTILE = st.text(
    alphabet=st.sampled_from(
        [
            *("\x1b", "[", "m", "1", ";", ":", "\r", "\n", "\t", "\x07", "\x9b", "\u202e"),
            "\u00ad",
            "\ud800",
            "\u00a0",
            "é",
            "✓",
            "a",
            " ",
            "\ufeff",
            "\u2028",
            "\x7f",
            "\x00",
            "]",
        ]
    )
)


@given(st.one_of(_HOSTILE, st.text()))
def test_the_stream_filter_agrees_with_the_regex_filter(text: str) -> None:
    """The re-free filters (on every verb's output) keep the rule the regex states."""
    assert terminal.keep_colour(text) == _oracle(text)
    assert for_terminal(text) == _oracle_all(text)


def test_long_sgr_and_split_crlf_are_judged_alike() -> None:
    for text in (
        "\x1b[" + "1" * 64 + "m",
        "\x1b[" + "1" * 65 + "m",
        "\x1b[",
        "a\r",
        "a\r\r\nb\r\n",
        "\x1b[31m\r\n\x1b]0;x\x07",
    ):
        assert terminal.keep_colour(text) == _oracle(text), repr(text)


@given(st.one_of(_HOSTILE, st.text()))
def test_strip_csi_is_clicks_rule(text: str) -> None:
    """The fast verbs strip escapes for a pipe exactly as click.echo does."""
    from click._compat import strip_ansi

    from looop.home.terminal import strip_csi

    assert strip_csi(text) == strip_ansi(text)
