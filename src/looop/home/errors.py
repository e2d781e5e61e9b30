"""Errors a user can cause: rendered by the CLI as one line, exit 1."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any


# each optional part's extra (pyproject's optional-dependencies) -> the module it brings
EXTRAS = {"k8s": "kubernetes", "mcp": "mcp", "notify": "apprise"}

# a data dir looop cannot write: what to do (status, doctor, a refused move)
WRITABLE_FIX = "remount it writable, or point LOOOP_DATA_DIR at a directory you can write"


def nearest(word: str, choices: list[str], n: int) -> list[str]:
    """Up to `n` of `choices` close to a mistyped `word` (did you mean)."""
    import difflib  # lazy: only a miss pays for difflib (collections, heapq: ~15 ms cold)

    return difflib.get_close_matches(word, choices, n=n, cutoff=0.6)


class LooopError(Exception):
    """A problem the user can fix; the message names what is wrong and what to do."""


class UsageMistake(LooopError):
    """A bad flag, a missing argument or a bad value: exit 2, as click's."""


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


def need_extra(extra: str, what: str, error: type[LooopError] = LooopError) -> Any:
    """The extra's module; without it, one line naming the extra to install (`what` needs it)."""
    import importlib  # lazy: only the verb or the config using an extra loads its module

    try:
        return importlib.import_module(EXTRAS[extra])
    except ImportError:
        raise error(f"{what} needs the {extra} extra: pip install 'looop[{extra}]'") from None
