"""looop: a tiny, portable, Kubernetes-shaped control loop for agent-driven work."""

__version__ = "0.1.0"
