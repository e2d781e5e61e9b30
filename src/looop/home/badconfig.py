"""A config value of the wrong shape, worded once for every reader of the config (kept out of
errors.py: a kill or a tick client raises LooopError and never words a config value)."""

from __future__ import annotations

from looop.home import jsonio
from looop.home.errors import LooopError

TYPE_CHECKING = False  # not `from typing`: the fast verbs read the config
if TYPE_CHECKING:
    from typing import Any


def bad_config_value(source: str, key: str, expected: str, got: Any) -> LooopError:
    """A config value of the wrong shape: names the file, the key and what it must be."""
    shown = jsonio.dumps(got, ensure_ascii=False)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return LooopError(f"config {source}: key '{key}' must be {expected} (got {shown})")
