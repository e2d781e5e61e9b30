"""Errors a user can cause: rendered by the CLI as one line, exit 1."""

from __future__ import annotations


class LooopError(Exception):
    """A problem the user can fix; the message names what is wrong and what to do."""


class CorruptState(LooopError):
    """A guard-state file exists but cannot be read; callers fail closed."""
