"""looop over the Model Context Protocol (`looop mcp`); loaded only by that verb."""
