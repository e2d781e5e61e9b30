"""The workers room's error: one line the CLI prints as `looop: …` (a LooopError)."""

from __future__ import annotations

from looop.home.errors import LooopError


class WorkerError(LooopError):
    pass


class StartHeld(LooopError):
    """A start held as `scheduled` for its account's usage-window reset: not a failure; the
    message says until when and why (home/usagewindows)."""
