"""What a process of looop's calls itself (`ps -o comm`, 15 bytes): a subreaper's sweep tells
looop's own long-lived processes (named `looop:<id>` or `looop-…`) from a run's leftovers by it."""

from __future__ import annotations

import os


def name_self(title: str) -> None:
    try:
        fd = os.open("/proc/self/comm", os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.write(fd, title.encode("utf-8", "replace")[:15])
    except OSError:
        pass
    finally:
        os.close(fd)


WEB_TITLE = b"looop: web "  # `looop web`'s title in `ps -o args` (core/proctitle.py)


def is_web(cmdline: bytes) -> bool:
    """Whether a /proc/PID/cmdline is `looop web`'s: its argv, or the title it shows."""
    return b"web" in cmdline.split(b"\0") or cmdline.startswith(WEB_TITLE)
