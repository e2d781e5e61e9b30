"""Untrusted text made safe for a human's terminal.

Ask prompts, goal bodies, worker notes, sensor details and run_shell output come from agents
and scripts; printed raw, an escape sequence in them could retitle the window, write the
clipboard (OSC 52), move the cursor over earlier lines or hide text. Everything that is not
printable text, a newline or a tab is shown as a visible escape instead (`\\x1b`, `\\u202e`), so
the bytes stay readable and nothing acts on the terminal.
"""

from __future__ import annotations

import re

from looop.home.terminal import UNSAFE_RANGES

# The characters that may act on a terminal: one list, in home/terminal.py (the stream filter's
# re-free twin of keep_colour below).
_UNSAFE_CLASS = "[" + "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in UNSAFE_RANGES) + "]"
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
