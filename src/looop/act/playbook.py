"""write_playbook: PLAYBOOK.md replaced whole, its earlier text kept in playbook-history/
(the newest `playbook_keep` versions; 0 keeps every one)."""

from __future__ import annotations

import re
from pathlib import Path

from looop.core.context import Ctx
from looop.core.text import file_text
from looop.hot import locks, store
from looop.hot.config import Knobs

HISTORY_NAME = re.compile(r"(\d{8}-\d{6})(?:-(\d+))?\.md")


def _history_key(name: str) -> tuple[str, int] | None:
    m = HISTORY_NAME.fullmatch(name)
    return (m.group(1), int(m.group(2) or 1)) if m else None


def _prune_history(hist: Path, keep: int) -> None:
    if keep <= 0:
        return  # 0 keeps every version: history exists to prevent loss
    versions = sorted(
        ((key, p) for p in hist.iterdir() if (key := _history_key(p.name)) is not None),
        key=lambda kp: kp[0],
    )
    for _, p in versions[:-keep]:
        store.remove(p)


def write_playbook(ctx: Ctx, knobs: Knobs, text: str) -> None:
    body = file_text(text)
    paths = ctx.paths
    with locks.dir_lock(paths.state_lock):
        try:
            old: bytes | None = store.read_regular(paths.playbook)
        except FileNotFoundError:
            old = None
        if old is not None and old != body.encode():
            hist = paths.playbook_history
            hist.mkdir(parents=True, exist_ok=True)
            stamp = ctx.clock.local().strftime("%Y%m%d-%H%M%S")
            name, n = f"{stamp}.md", 2
            while (hist / name).exists():  # never over an earlier version of the same second
                name, n = f"{stamp}-{n}.md", n + 1
            store.atomic_write(hist / name, old)
            _prune_history(hist, knobs.num("playbook_keep"))
        store.atomic_write(paths.playbook, body)
