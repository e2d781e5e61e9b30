"""The optional parts (pyproject's optional-dependencies): each extra's module, loaded by the
verb or the config that uses it, or one line naming the extra to install. Its own module: the
contract verbs load home/errors.py and never an extra."""

from __future__ import annotations

import importlib
from typing import Any

from looop.home.errors import LooopError

# each optional part's extra (pyproject's optional-dependencies) -> the module it brings
EXTRAS = {"k8s": "kubernetes", "mcp": "mcp", "notify": "apprise"}


def need_extra(extra: str, what: str, error: type[LooopError] = LooopError) -> Any:
    """The extra's module; without it, one line naming the extra to install (`what` needs it)."""
    try:
        return importlib.import_module(EXTRAS[extra])
    except ImportError:
        raise error(f"{what} needs the {extra} extra: pip install 'looop[{extra}]'") from None
