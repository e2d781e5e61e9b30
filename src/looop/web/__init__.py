"""looop.web: the web face of a data dir — `looop web`, a versioned JSON API under /api/v1,
live events over SSE and a static dashboard. Loaded only by `looop web` (and `looop up --web`,
which starts it as its own process): no hot verb imports this room."""

from types import ModuleType

from looop.home.config import need_extra


def mcp_sdk(what: str) -> ModuleType:
    """web/mcpserver.py, the MCP SDK's one door, for `what` that serves MCP with it (`looop
    mcp`, a web server configured for /mcp); without the extra, one line naming it."""
    need_extra("mcp", what)
    # lazy: the MCP SDK (~600 modules, seconds): `mcp --worker` and a server without /mcp skip it
    import looop.web.mcpserver as mcpserver

    return mcpserver
