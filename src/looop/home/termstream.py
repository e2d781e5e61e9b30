"""A text stream wrapper through which every verb's output reaches the terminal defused.

Verbs print text from agents and scripts in many places; filtering at the stream means no
print site can forget. The filter (core.termlite) needs no `re`, so the hot verbs pay next to
nothing for it. Binary writes
(`.buffer`) and the file descriptor pass through untouched: they are for verbs whose job is
raw terminal bytes (attach, log --raw)."""

from __future__ import annotations

from looop.home.termlite import keep_colour

TYPE_CHECKING = False  # every verb loads this module: keep typing off its path

if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any, TextIO


class SafeStream:
    def __init__(self, inner: TextIO) -> None:
        self._inner = inner

    def write(self, text: str) -> int:
        self._inner.write(keep_colour(text))
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
