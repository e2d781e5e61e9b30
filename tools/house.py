"""Draw the house from its imports: each room of `src/looop/` on a floor above every room it
imports, with its arrows (and with `--sizes`, its files and lines). `python tools/house.py`
prints the picture; `--write` puts it into docs/ARCHITECTURE.md between its two house markers,
where a unit test holds it true (tests/unit/test_house_picture.py)."""

from __future__ import annotations

import argparse
import ast
import functools
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "looop"
DOC = ROOT / "docs" / "ARCHITECTURE.md"
BEGIN = "<!-- house: drawn by tools/house.py from the imports; do not edit by hand -->"
END = "<!-- /house -->"
TOP = "(top)"  # the package's own modules: the console entry and `python -m looop`


def room_of(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else TOP


@functools.cache  # a file is read once however often the house is drawn
def _read(path: Path) -> tuple[frozenset[str], int]:
    """Rooms named by any import in the file, at module level, inside a function or for type
    hints alone: every arrow is drawn. And its line count."""
    text = path.read_text()
    found: set[str] = set()
    tree = ast.parse(text)
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] != "looop" or len(parts) == 1:
                continue  # not ours, or the package itself (its version): every room's
            found.add(parts[1] if len(parts) > 1 and (SRC / parts[1]).is_dir() else TOP)
    return frozenset(found), len(text.splitlines())


def survey() -> tuple[dict[str, set[str]], dict[str, tuple[int, int]]]:
    """room -> the rooms it imports; room -> (files, lines)."""
    arrows: dict[str, set[str]] = defaultdict(set)
    size: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for path in sorted(SRC.rglob("*.py")):
        room = room_of(path)
        rooms, lines = _read(path)
        size[room][0] += 1
        size[room][1] += lines
        arrows[room] |= rooms - {room}
    return dict(arrows), {r: (f, n) for r, (f, n) in size.items()}


def floors(arrows: dict[str, set[str]]) -> dict[str, int]:
    """Each room's floor: one above the highest room it imports (a circle shares a floor)."""
    floor: dict[str, int] = {}

    def height(room: str, seen: frozenset[str]) -> int:
        if room in floor:
            return floor[room]
        below = [height(r, seen | {room}) for r in arrows.get(room, ()) if r not in seen]
        floor[room] = 1 + max(below, default=-1)
        return floor[room]

    for room in sorted(arrows):
        height(room, frozenset())
    return floor


def draw(sizes: bool = False) -> str:
    """The picture; with `sizes`, each room's files and lines too (the doc's picture leaves
    them out, so it changes only when the house does)."""
    arrows, size = survey()
    floor = floors(arrows)
    upward = sorted((a, b) for a, bs in arrows.items() for b in bs if floor[b] >= floor[a])
    width = max(len(r) for r in floor)
    lines = []
    for level in range(max(floor.values()), -1, -1):
        rooms = sorted(r for r in floor if floor[r] == level)
        lines.append(f"floor {level} " + "─" * 60)
        for r in rooms:
            files, n = size[r]
            count = f"{files:>3} files {n:>6,} lines  " if sizes else ""
            head = f"  {r:<{width}}  {count}→ "
            words = sorted(arrows[r]) or ["(nothing: the standard library only)"]
            row = head
            for w in words:  # wrapped at 100 columns under the first arrow
                if len(row) + len(w) > 100 and row.strip() != head.strip():
                    lines.append(row.rstrip())
                    row = " " * len(head)
                row += w + " "
            lines.append(row.rstrip())
    if sizes:
        total = sum(n for _, n in size.values())
        files = sum(f for f, _ in size.values())
        lines.append(f"{files} files, {total:,} lines in {len(floor)} rooms")
    if upward:  # a circle between rooms: drawn on one floor, said here
        lines.append("arrows that do not point down: " + ", ".join(f"{a}→{b}" for a, b in upward))
    return "\n".join(lines)


def block() -> str:
    return f"{BEGIN}\n```\n{draw()}\n```\n{END}"


def write(doc: Path = DOC) -> bool:
    """Put the picture into the doc between its markers; True if the doc changed."""
    text = doc.read_text()
    head, sep, rest = text.partition(BEGIN)
    _, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        raise SystemExit(f"house: {doc} has no {BEGIN!r} … {END!r} markers to draw between")
    new = head + block() + tail
    if new != text:
        doc.write_text(new)
    return new != text


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--write", action="store_true", help="update docs/ARCHITECTURE.md")
    p.add_argument("--sizes", action="store_true", help="each room's files and lines too")
    args = p.parse_args(argv)
    if args.write:
        print("docs/ARCHITECTURE.md " + ("updated" if write() else "already true"))
    else:
        print(draw(sizes=args.sizes))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
