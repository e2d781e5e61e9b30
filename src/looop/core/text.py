"""Text shortening with one meaning each, shared by every room that shows or journals text."""

from __future__ import annotations


def clip(text: str, limit: int) -> str:
    """At most `limit` characters; a cut ends with an ellipsis (counted in the limit)."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def one_line(text: str, limit: int = 200) -> str:
    """Every run of whitespace (newlines included) to one space, then clip."""
    return clip(" ".join(text.split()), limit)


def file_text(text: str) -> str:
    """As a text file holds it: LF line ends, one newline at the end."""
    text = text.replace("\r\n", "\n")
    return text if text.endswith("\n") else text + "\n"
