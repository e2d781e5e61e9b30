"""The one error the web room raises for a request it refuses: an HTTP status and one line."""

from __future__ import annotations

from typing import Any


class WebError(Exception):
    def __init__(self, status: int, message: str, more: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = " ".join(message.split())  # one line, whatever the cause said
        self.more = more or {}  # fields beside "error" a page can act on (a land's conflict)


def not_found(what: str) -> WebError:
    return WebError(404, what)
