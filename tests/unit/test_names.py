"""Files named apart: no two modules in one room (a top-level package of looop) whose names
differ by one letter (`state.py` beside `states.py` reads as a typo, and a reader opens the
wrong one). Read from the source tree. NAMES_DEBT lists the pairs there are today: debt to
pay, never precedent; a new pair fails, and a pair renamed apart must leave the list."""

from __future__ import annotations

from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "looop"

pytestmark = pytest.mark.unit

# (room, one module, the other) by their paths under src/looop, sorted
NAMES_DEBT: set[tuple[str, str, str]] = {
    ("act", "act/parse.py", "act/shellguard/parsed.py"),
    ("core", "core/proc.py", "core/procs.py"),
    ("sessions", "sessions/state.py", "sessions/states.py"),
}


def one_letter_apart(a: str, b: str) -> bool:
    """One letter changed, added or dropped (not the same name)."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def _pairs() -> set[tuple[str, str, str]]:
    rooms: dict[str, list[str]] = {}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC)
        if path.name != "__init__.py":
            rooms.setdefault(rel.parts[0] if len(rel.parts) > 1 else "(top)", []).append(
                rel.as_posix()
            )
    found = set()
    for room, files in rooms.items():
        for a in files:
            for b in files:
                if a < b and one_letter_apart(Path(a).stem, Path(b).stem):
                    found.add((room, a, b))
    return found


def test_the_rule_sees_one_letter_and_only_one() -> None:
    assert one_letter_apart("state", "states") and one_letter_apart("states", "state")
    assert one_letter_apart("proc", "prob")
    assert not one_letter_apart("hosts", "hosted")  # two letters
    assert not one_letter_apart("shim", "shim")  # the same name in two packages


def test_no_new_pair_of_names_one_letter_apart() -> None:
    found = _pairs()
    assert found - NAMES_DEBT == set(), "name the new module for what it holds"
    assert NAMES_DEBT - found == set(), "renamed apart: take it off NAMES_DEBT"


# Names that said how (speed, plumbing) or where from, not what a module holds: renamed away in
# issue 53 (hot/ is home/ and verbs/, wire is sessionfiles, ops is control, …); none comes back.
MECHANISM_NAMES = frozenset(
    {"hot", "wire", "ops", "glance", "osseam", "farstart", "gohome", "beathost", "beatclient"}
)


def test_no_module_or_room_is_named_for_a_mechanism() -> None:
    found = sorted(
        p.relative_to(SRC).as_posix()
        for p in SRC.rglob("*")
        if "__pycache__" not in p.parts
        and (p.is_dir() or p.suffix == ".py")
        and p.stem in MECHANISM_NAMES
    )
    assert found == [], "name the module for what it holds, in looop's words"
