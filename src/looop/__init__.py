"""looop: a tiny, portable, Kubernetes-shaped control loop for agent-driven work."""

# The one copy of the version: hatchling writes it into the distribution's metadata
# (pyproject's `[tool.hatch.version]`), `looop version` reads it here without
# importlib.metadata (~60 modules, 4x a bare interpreter's start).
__version__ = "0.1.0"
