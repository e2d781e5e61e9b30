"""`looop log` (`logs`) without click: a session's log read from disk, live or not, in its
plain spellings (-n/--tail, --raw, --grep); -f, --since, --json and anything else are
click's (home/drive.py says what both faces share)."""

from __future__ import annotations

import sys

from looop.home.drive import (
    data_dir,
    log_text,
    plain_id,
    remote_record,
    split_flags,
    value_options,
)
from looop.home.logs import log_tail
from looop.verbs.away import run_far

TYPE_CHECKING = False  # a human or a script runs these often: no typing
if TYPE_CHECKING:
    from collections.abc import Mapping

    from looop.home.clock import Clock

LOG_OPTIONS = frozenset({"-n", "--tail", "--grep"})


def parse_log(argv: list[str]) -> tuple[str, int | None, bool, str | None] | None:
    """(id, --tail, --raw, --grep) for the plain spellings of `log`: -f, --since and --json
    (and anything else) are click's."""
    got = value_options(argv[1:], LOG_OPTIONS)
    if got is None:
        return None
    rest, values = got
    tail = values.get("--tail", values.get("-n"))
    if "--tail" in values and "-n" in values:
        return None  # which came last is click's to know
    # a count params.count() takes: plain digits, under its MAX_COUNT of 10^9
    if tail is not None and not (tail.isascii() and tail.isdigit() and len(tail) <= 9):
        return None
    split = split_flags(rest, frozenset({"--raw"}))
    if split is None or len(split[1]) != 1 or not plain_id(split[1][0], False):
        return None
    seen, (sid,) = split
    return sid, None if tail is None else int(tail), bool(seen), values.get("--grep")


def _log(argv: list[str], env: Mapping[str, str]) -> bool:
    got = parse_log(argv)
    if got is None:
        return False
    data = data_dir(env)
    if remote_record(data, got[0]):
        return run_far(argv, env, data, got[0])
    sys.stdout.write(log_text(log_tail(data, *got)))
    return True


def serve(argv: list[str], env: Mapping[str, str], clock: Clock | None = None) -> bool:
    """`log` of a local session in a plain spelling; False (click's turn) for anything else."""
    return _log(argv, env)
