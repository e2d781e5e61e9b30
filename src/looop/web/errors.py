"""The one error the web room raises for a request it refuses: an HTTP status and one line."""

from __future__ import annotations


class WebError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = " ".join(message.split())  # one line, whatever the cause said


def not_found(what: str) -> WebError:
    return WebError(404, what)
