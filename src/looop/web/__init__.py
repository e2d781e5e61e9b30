"""looop.web: the web face of a data dir — `looop web`, a versioned JSON API under /api/v1,
live events over SSE and a static dashboard. Loaded only by `looop web` (and `looop up --web`,
which starts it as its own process): no hot verb imports this room."""

from __future__ import annotations

from typing import TYPE_CHECKING

from looop.home.config import need_extra

if TYPE_CHECKING:
    from looop.web.mcpserver import Mcp


def mcp_sdk(asker: str) -> type[Mcp]:
    """The MCP SDK's servers (web/mcpserver.py) for `asker` (`looop mcp`, a web face serving
    /mcp); without the extra, one line that says how to add it."""
    need_extra("mcp", asker)
    # lazy: the MCP SDK (~600 modules, seconds): `mcp --worker` and the web face never need it
    from looop.web.mcpserver import Mcp

    return Mcp
