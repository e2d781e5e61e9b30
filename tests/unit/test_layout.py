"""One data-dir layout (issue 53 item 4): the data dir's top-level names are spelled once, in
home/where.py (the hot verbs' strings) and home/paths.py (`Paths`, built from them). A module
that joins one by hand (`data / "sessions"`, `os.path.join(data, "claims")`) fails here: ask
`Paths` (`ctx.paths.sessions`) or join the name `where` gives (`join(data, where.SESSIONS)`).
Read from the source tree, as tests/unit/test_names.py reads names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from looop.home.paths import Paths

SRC = Path(__file__).resolve().parents[2] / "src" / "looop"
SPELLED_HERE = {"home/paths.py", "home/where.py"}

pytestmark = pytest.mark.unit

# (module, name): a join that is not the data dir's layout, each with why
ELSEWHERE: dict[tuple[str, str], str] = {
    ("runners/pi.py", "sessions"): "pi's own ~/.pi/agent/sessions, not the data dir",
    ("runners/opencode.py", ".gitignore"): "a repository's .gitignore, not the data dir's",
    ("workers/ports.py", ".lock"): "the ports folder's own lock file (<data>/ports/.lock)",
    ("workers/diskuse.py", "reports"): "a box's room (<data>.work/rooms/<id>/reports)",
    ("sandbox/worker.py", "reports"): "a box's room as the boxed worker sees it",
    ("sandbox/worker.py", "prompts"): "relative to the data dir as mounted in the box",
    ("remote/kube/backend.py", "sessions"): "a pod's own looop home, built in the pod",
    ("remote/ssh/start.py", "prompts"): "the SSH host's looop home, built there",
    ("remote/ssh/install.py", "hosts"): "the home's wheel cache, hosts/.wheels",
    ("remote/ssh/link.py", "hosts"): "a relay's error file, hosts/.<host>.relay.err",
    ("remote/ssh/relay.py", "hosts"): "a relay's lock, hosts/.<host>.relay.lock",
}


def layout_names() -> set[str]:
    """The top-level names `Paths` gives the data dir (every attribute one level under it)."""
    p = Paths.at(Path("/d"))
    names = set()
    for attr in dir(Paths):
        got = getattr(p, attr)
        if isinstance(got, Path) and got.parent == p.data:
            names.add(got.name)
    return names - {"config.json"}


def hand_joins(text: str, names: set[str]) -> list[tuple[int, str]]:
    alt = "|".join(map(re.escape, sorted(names, key=len, reverse=True)))
    pat = re.compile(rf'/\s*"({alt})"(?![\w.-])|join\([^)\n]*"({alt})"')
    found = []
    for i, line in enumerate(text.splitlines(), 1):
        found += [(i, m.group(1) or m.group(2)) for m in pat.finditer(line)]
    return found


def test_the_scan_sees_a_hand_join_and_not_a_spelled_one() -> None:
    names = layout_names()
    assert {"sessions", "hosts", "claims", ".lock", "runs", "snapshots"} <= names
    bad = 'a = data / "claims"\nb = os.path.join(data, "sessions", sid)\n'
    assert [n for _, n in hand_joins(bad, names)] == ["claims", "sessions"]
    good = 'a = ctx.paths.claims\nb = os.path.join(data, where.SESSIONS, sid)\nc = "runs"\n'
    assert hand_joins(good, names) == []


def test_no_module_joins_a_layout_name_by_hand() -> None:
    names = layout_names()
    found = []
    seen = set()
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel in SPELLED_HERE:
            continue
        for line, name in hand_joins(path.read_text(), names):
            seen.add((rel, name))
            if (rel, name) not in ELSEWHERE:
                found.append(f"{rel}:{line} joins {name!r}")
    assert found == [], "ask Paths, or join the name home/where.py gives"
    assert set(ELSEWHERE) <= seen, "an allowed join that is gone must leave ELSEWHERE"
