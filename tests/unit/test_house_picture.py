"""The picture of the house in docs/ARCHITECTURE.md is the one tools/house.py draws from
today's imports: a room added, moved or wired differently shows in the doc or fails here."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))

import house

pytestmark = pytest.mark.unit


def test_the_doc_shows_the_house_as_its_imports_draw_it() -> None:
    assert house.block() in house.DOC.read_text(), (
        "docs/ARCHITECTURE.md's house picture is stale: run `python tools/house.py --write`"
    )


def test_a_room_sits_above_every_room_it_imports_and_a_new_arrow_shows(tmp_path: Path) -> None:
    arrows, size = house.survey()
    floor = house.floors(arrows)
    assert floor["home"] == 0 and not arrows["home"]  # the bottom imports nothing of ours

    def reaches(a: str, b: str, seen: set[str]) -> bool:
        return a == b or any(reaches(n, b, seen | {a}) for n in arrows.get(a, ()) if n not in seen)

    for room, below in arrows.items():
        for other in below:
            if not reaches(other, room, set()):  # not a circle: strictly below
                assert floor[other] < floor[room], (room, other)
    assert sum(n for _, n in size.values()) > 1000
    # the picture names every room, and a wrong picture is found and redrawn
    doc = tmp_path / "ARCH.md"
    doc.write_text(f"intro\n{house.BEGIN}\nold picture\n{house.END}\nrest\n")
    assert house.write(doc) is True
    text = doc.read_text()
    assert text.startswith("intro\n") and text.endswith("\nrest\n")
    assert all(f"  {room} " in text for room in floor)
    assert "lines" not in text and " lines " in house.draw(sizes=True)
    assert house.write(doc) is False  # drawn once, it stays
