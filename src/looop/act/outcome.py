"""What one move ends as: the Executed record, or ExecError's one line."""

from typing import NamedTuple

from looop.home.errors import LooopError


class ExecError(LooopError):
    """The action was refused or failed; one line for LAST FAILURE and the human."""


class Executed(NamedTuple):
    kind: str
    summary: str
    journal: str  # the sanitised text that went into journal.md
    next_interval_s: int | None
    goal: str | None
