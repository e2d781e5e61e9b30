"""The home's request key, for a verb the home runs for a worker away from home
(contract/requests.py sets LOOOP_REQUEST_KEY, and LOOOP_REQUEST_RETRY=1 when it runs the same
request again after a cut): the verbs with an effect keep the key on it and, run again, find
it instead of making it twice. Import-light: the hot verbs read it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping


def request_key(env: Mapping[str, str]) -> tuple[str | None, bool]:
    """(key, again); (None, False) for a verb run at home on its own. A key is 1-64 of
    [A-Za-z0-9_-], so its spelling inside a JSON row is exact."""
    key = env.get("LOOOP_REQUEST_KEY") or ""
    ok = 0 < len(key) <= 64 and all(c.isascii() and (c.isalnum() or c in "_-") for c in key)
    return (key, env.get("LOOOP_REQUEST_RETRY") == "1") if ok else (None, False)
