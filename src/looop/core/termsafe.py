"""Untrusted text made safe for a human's terminal.

Ask prompts, goal bodies, worker notes, sensor details and run_shell output come from agents
and scripts; printed raw, an escape sequence in them could retitle the window, write the
clipboard (OSC 52), move the cursor over earlier lines or hide text. Everything that is not
printable text, a newline or a tab is shown as a visible escape instead (`\\x1b`, `\\u202e`), so
the bytes stay readable and nothing acts on the terminal.
"""

from __future__ import annotations

import re

# C0 controls but \t and \n, DEL, C1 controls, and the format characters that reorder or hide
# text (bidi overrides and isolates, zero-width joiners, BOM, soft hyphen, line/para separators).
_UNSAFE_CLASS = (
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064"
    "\u2066-\u206f\ufeff\ufff9-\ufffb\ud800-\udfff]"
)
_UNSAFE = re.compile(_UNSAFE_CLASS)


def _visible(m: re.Match[str]) -> str:
    cp = ord(m.group())
    return f"\\x{cp:02x}" if cp < 0x100 else f"\\u{cp:04x}"


def for_terminal(text: str) -> str:
    """Text with every control and invisible format character shown as a visible escape."""
    return _UNSAFE.sub(_visible, text)


def line_for_terminal(text: str) -> str:
    """One line: like for_terminal, and newlines and tabs become visible too."""
    return for_terminal(text).replace("\n", "\\n").replace("\t", "\\t")


# SGR (colour and weight) is the one escape looop itself prints; it cannot move the cursor,
# retitle, or touch the clipboard, so it passes, as does a PTY's CRLF line end. Everything else
# unsafe is made visible.
_UNSAFE_BUT_SGR = re.compile("\x1b\\[[0-9;:]{0,64}m|\r\n|" + _UNSAFE_CLASS)


def _visible_unless_sgr(m: re.Match[str]) -> str:
    # \uXXXX, not \xXX: inside a --json string it is a valid escape that decodes to the very
    # character it replaced, so machine output stays exact and still cannot act on a terminal
    s = m.group()
    return s if len(s) > 1 else f"\\u{ord(s):04x}"


def keep_colour(text: str) -> str:
    """Like for_terminal, but looop's own colour codes (SGR) and CRLF line ends survive."""
    return _UNSAFE_BUT_SGR.sub(_visible_unless_sgr, text)
