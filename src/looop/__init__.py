"""looop: a tiny, portable, Kubernetes-shaped control loop for agent-driven work."""


def __getattr__(name: str) -> str:
    """`looop.__version__`: the installed distribution's (pyproject's `version`), read when
    asked: importlib.metadata costs a cold start ~30 ms that the fast verbs never pay."""
    if name != "__version__":
        raise AttributeError(f"module 'looop' has no attribute {name!r}")
    from importlib.metadata import version  # lazy: only what prints or sends the version

    return version("looop")
