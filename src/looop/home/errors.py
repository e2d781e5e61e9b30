"""Errors a user can cause: rendered by the CLI as one line, exit 1."""

from __future__ import annotations

TYPE_CHECKING = False  # not `from typing`: every verb imports this module
if TYPE_CHECKING:
    from typing import Any


# a data dir looop cannot write: what to do (status, doctor, a refused move)
WRITABLE_FIX = "remount it writable, or point LOOOP_DATA_DIR at a directory you can write"


class LooopError(Exception):
    """A problem the user can fix; the message names what is wrong and what to do."""


class CorruptState(LooopError):
    """A guard-state file exists but cannot be read; callers fail closed."""


def bad_config_value(source: str, key: str, expected: str, got: Any) -> LooopError:
    """A config value of the wrong shape: names the file, the key and what it must be."""
    # lazy: only a wrong config is worded; a kill or a tick client raises LooopError alone
    from looop.home import jsonio

    shown = jsonio.dumps(got, ensure_ascii=False)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return LooopError(f"config {source}: key '{key}' must be {expected} (got {shown})")
