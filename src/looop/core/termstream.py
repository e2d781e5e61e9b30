"""A text stream wrapper through which every verb's output reaches the terminal defused.

Verbs print text from agents and scripts in many places; filtering at the stream means no
print site can forget. Plain printable ASCII (nearly every line) passes without loading the
filter, so `looop version` and the other hot verbs pay nothing for it. Binary writes
(`.buffer`) and the file descriptor pass through untouched: they are for verbs whose job is
raw terminal bytes (attach, log --raw)."""

from __future__ import annotations

TYPE_CHECKING = False  # every verb loads this module: keep typing off its path

if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any, TextIO


def _plain(text: str) -> bool:
    """Printable ASCII, newlines and tabs only: nothing a terminal could act on."""
    return text.isascii() and text.replace("\n", "").replace("\t", "").isprintable()


class SafeStream:
    def __init__(self, inner: TextIO) -> None:
        self._inner = inner

    def write(self, text: str) -> int:
        if not _plain(text):
            from looop.core.termsafe import keep_colour  # lazy: only escapes pay for it

            self._inner.write(keep_colour(text))
        else:
            self._inner.write(text)
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
