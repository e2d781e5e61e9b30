"""Errors a user can cause: rendered by the CLI as one line, exit 1."""

from __future__ import annotations

from typing import Any

from looop.home import jsonio

# a data dir looop cannot write: what to do (status, doctor, a refused move)
WRITABLE_FIX = "remount it writable, or point LOOOP_DATA_DIR at a directory you can write"


def nearest(word: str, choices: list[str], n: int) -> list[str]:
    """Up to `n` of `choices` close to a mistyped `word` (did you mean)."""
    import difflib  # lazy: difflib (~1 ms, every verb's): only a miss pays for it

    return difflib.get_close_matches(word, choices, n=n, cutoff=0.6)


class LooopError(Exception):
    """A problem the user can fix; the message names what is wrong and what to do."""


class UsageMistake(LooopError):
    """A bad flag, a missing argument or a bad value: exit 2, as click's."""


class CorruptState(LooopError):
    """A guard-state file exists but cannot be read; callers fail closed."""


def bad_config_value(source: str, key: str, expected: str, got: Any) -> LooopError:
    """A config value of the wrong shape: names the file, the key and what it must be."""
    shown = jsonio.dumps(got, ensure_ascii=False)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return LooopError(f"config {source}: key '{key}' must be {expected} (got {shown})")
