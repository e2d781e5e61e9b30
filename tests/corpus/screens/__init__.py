"""Random token streams and what tmux (a real terminal emulator) showed for each: the
reference tests/unit/sessions/test_screen.py holds looop's emulator to. `python -m
tests.corpus.screens.record` re-records tmux.json; it is never edited by hand."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent

TOKENS = [
    b"word ",
    b"longer text run that wraps ",
    "é".encode(),
    "日本".encode(),
    b"\r\n",
    b"\n",
    b"\r",
    b"\b",
    b"\t",
    b"\x1b[A",
    b"\x1b[2B",
    b"\x1b[3C",
    b"\x1b[D",
    b"\x1b[5;7H",
    b"\x1b[H",
    b"\x1b[2J",
    b"\x1b[K",
    b"\x1b[1K",
    b"\x1b[1;31m",
    b"\x1b[0m",
    b"\x1b[7m",
    b"\x1b[?25l",
    b"\x1b[?25h",
    b"\x1b7",
    b"\x1b8",
    b"\x1bM",
    b"\x1bD",
    b"\x1b]0;title\x07",
    b"\x1b[2;5r",
    b"\x1b[r",
    b"\x1b[2L",
    b"\x1b[M",
    b"\x1b[3P",
    b"\x1b[2@",
    b"\x1b[4X",
    b"\x1b[10G",
    b"\x1b[3d",
    b"\x1b[4h",
    b"\x1b[4l",
    b"\x1b[?7l",
    b"\x1b[?7h",
]


def stream_of(seed: int) -> tuple[bytes, int, int]:
    """A random stream of `TOKENS` and a screen size."""
    rng = random.Random(seed)
    data = b"".join(rng.choice(TOKENS) for _ in range(400))
    cols, rows = rng.choice([(20, 6), (13, 4), (80, 24)])
    return data, cols, rows


def recorded() -> dict[str, Any]:
    """seed -> {cols, rows, text}: tmux's rows for that stream."""
    return dict(json.loads((HERE / "tmux.json").read_text()))
