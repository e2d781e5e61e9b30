"""click.echo's behaviour for the worker contract's click-free verbs (no click import)."""

from __future__ import annotations

import sys

from looop.home.terminal import strip_csi


def _isatty(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except Exception:
        return False


def echo(text: str) -> None:
    """One line to stdout as click.echo writes it: escape sequences stripped unless stdout is
    a terminal, then flushed."""
    out = text + "\n"
    if not _isatty(sys.stdout):
        out = strip_csi(out)
    sys.stdout.write(out)
    sys.stdout.flush()
