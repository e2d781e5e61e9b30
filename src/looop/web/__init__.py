"""looop.web: the web face of a data dir — `looop web`, a versioned JSON API under /api/v1,
live events over SSE and a static dashboard. Loaded only by `looop web` (and `looop up --web`,
which starts it as its own process): no hot verb imports this room."""
