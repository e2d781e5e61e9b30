"""write_playbook: PLAYBOOK.md replaced whole, its earlier text kept in playbook.d/ (the newest
`playbook_keep` versions; 0 keeps every one), named so they sort in the order written."""

from __future__ import annotations

import re
from pathlib import Path

from looop.core.context import Ctx
from looop.core.text import file_text
from looop.home import locks, store
from looop.home.config import Knobs

# `20260101-120000.md`, then `20260101-120000~0002.md`, … for more in the same second: `~`
# sorts after `.` and the count is padded, so a plain `ls` lists them in the order written.
# `-N` is how earlier versions named them (read still, in their place).
HISTORY_NAME = re.compile(r"(\d{8}-\d{6})(?:~(\d{4,})|-(\d+))?\.md")


def _history_key(name: str) -> tuple[str, int] | None:
    m = HISTORY_NAME.fullmatch(name)
    return (m.group(1), int(m.group(2) or m.group(3) or 1)) if m else None


def versions(hist: Path) -> list[Path]:
    """The earlier PLAYBOOKs in playbook.d/, oldest first (other *.md files after them)."""
    try:
        files = [p for p in hist.iterdir() if p.name.endswith(".md")]
    except OSError:
        return []
    known = [(key, p) for p in files if (key := _history_key(p.name)) is not None]
    other = sorted(p for p in files if _history_key(p.name) is None)
    return [p for _, p in sorted(known, key=lambda kp: kp[0])] + other


def _prune_history(hist: Path, keep: int) -> None:
    if keep <= 0:
        return  # 0 keeps every version: history exists to prevent loss
    known = [p for p in versions(hist) if _history_key(p.name) is not None]
    for p in known[:-keep]:
        store.remove(p)


def _new_name(hist: Path, stamp: str) -> str:
    """A name after every version of the same second (never over one of them)."""
    taken = [
        k[1] for p in hist.glob(f"{stamp}*.md") if (k := _history_key(p.name)) and k[0] == stamp
    ]
    return f"{stamp}.md" if not taken else f"{stamp}~{max(taken) + 1:04}.md"


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
            store.atomic_write(hist / _new_name(hist, stamp), old)
            _prune_history(hist, knobs.num("playbook_keep"))
        store.atomic_write(paths.playbook, body)
