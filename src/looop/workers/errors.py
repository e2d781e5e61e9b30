"""The workers room's error: one line the CLI prints as `looop: …` (a LooopError)."""

from __future__ import annotations

from looop.home.errors import LooopError


class WorkerError(LooopError):
    pass
