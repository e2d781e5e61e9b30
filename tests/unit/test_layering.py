"""The house's layering as a contract: which rooms may import which (docs/ARCHITECTURE.md,
"Rooms and arrows"), read from the source with `ast` — module-level and function-level
imports alike — and no import cycle between modules."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "looop"

# room -> the rooms it may import (besides itself). Arrows point down only.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "sessions": {"core"},
    "decide": {"core"},
    "seed": {"core"},
    "human": {"core", "sessions"},
    "workers": {"core", "sessions", "human"},
    "act": {"core", "sessions", "human", "workers"},
    "sense": {"core", "sessions", "human", "workers"},
    "loop": {"core", "sessions", "human", "workers", "act", "decide", "sense", "seed"},
    "demo": {"core", "loop", "seed"},
    "tui": {"core", "sessions", "human", "workers", "loop"},
    "web": {"core", "sessions", "human", "workers", "act", "decide", "loop", "seed", "(top)"},
    "cli": {
        "core",
        "sessions",
        "human",
        "workers",
        "act",
        "decide",
        "sense",
        "loop",
        "seed",
        "demo",
        "tui",
        "web",
        "(top)",
    },
    "(top)": {"cli"},
}


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and (SRC / parts[1]).is_dir() else "(top)"


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC.parent).with_suffix("")
        name = ".".join(rel.parts)
        out[name.removesuffix(".__init__")] = path
    return out


def _imports(path: Path, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("looop")}
        elif (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and (node.module or "").startswith("looop")
        ):
            module = node.module or ""
            found.add(module)
            found |= {f"{module}.{a.name}" for a in node.names}
    return found


def test_every_import_follows_the_rooms_arrows() -> None:
    modules = _modules()
    breaks = []
    for name, path in sorted(modules.items()):
        room = _room(name)
        assert room in ALLOWED, f"{name}: room '{room}' is not in the contract"
        for target in _imports(path, top_level_only=False):
            if target not in modules:
                continue  # `from looop.x import name` also yields looop.x.name
            other = _room(target)
            if other != room and other not in ALLOWED[room]:
                breaks.append(f"{name} -> {target}")
    assert breaks == []


def test_no_import_cycle_between_modules_at_load_time() -> None:
    modules = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        graph[name] = {t for t in _imports(path, top_level_only=True) if t in modules}
    seen: dict[str, int] = {}  # 1 on the stack, 2 done
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        seen[node] = 1
        for nxt in sorted(graph[node]):
            if seen.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in seen:
                visit(nxt, [*stack, nxt])
        seen[node] = 2

    for name in sorted(graph):
        if name not in seen:
            visit(name, [name])
    # a package importing its own submodules is not a cycle with them
    real = [c for c in cycles if not all(c[0].startswith(m) or m.startswith(c[0]) for m in c)]
    assert real == []


def test_the_contract_is_the_one_in_the_architecture_doc() -> None:
    doc = (SRC.parents[1] / "docs" / "ARCHITECTURE.md").read_text()
    for room, allowed in ALLOWED.items():
        if room == "(top)":
            continue
        line = next((ln for ln in doc.splitlines() if ln.startswith(f"| `{room}/` →")), None)
        assert line is not None, f"docs/ARCHITECTURE.md lacks the arrow row for {room}/"
        listed = {w.strip("` /") for w in line.split("|")[2].split(",") if w.strip()}
        assert listed - {"—"} == {a for a in allowed if a != "(top)"}, room
