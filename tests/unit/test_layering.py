"""The house's import contracts, declared once: the tables at the top of this file are the
only copy (docs/ARCHITECTURE.md points here). Each is checked from the source with `ast`,
module-level and function-level imports alike:

- ROOMS: which rooms each room may import. Arrows point down only.
- INDEPENDENT: parts of one room that never import each other.
- PRIVATE: a `_name` is never imported from another module, except inside a package that is
  one module split into files.
- CIRCLES: no import circle at load time; the circles function-level imports still close are
  listed, so a new one fails and a broken one must leave the list.
- LAZY: every load made inside a function, listed (an extra, a verb table, a door a process
  takes at run time); everything else imports at the top.

Each `*_DEBT` set names what breaks a rule today: debt to pay, never precedent to follow."""

from __future__ import annotations

import ast
import functools
from collections import Counter, defaultdict
from pathlib import Path

from tests import sourcetree

SRC = Path(__file__).resolve().parents[2] / "src" / "looop"

# ---- the contract -----------------------------------------------------------------------------

# room -> the rooms it may import (besides itself). Arrows point down only.
# the floors below the machinery: the home, runner profiles, core, then the domains on it
BASE = ("home", "runners", "core", "spend", "views", "human", "contract")
ROOMS: dict[str, set[str]] = {
    "home": set(),  # the ground floor: the standard library and itself
    **{room: set(BASE[:i]) for i, room in enumerate(BASE) if i},
    "sandbox": {*BASE},  # srt, the box host, the filter, the door
    "sessions": {*BASE},
    "decide": {*BASE, "sandbox"},
    "seed": {"home", "runners", "core"},
    "workers": {*BASE, "sandbox", "sessions"},
    "remote": {*BASE, "sandbox", "sessions", "workers"},
    "act": {*BASE, "sandbox", "sessions", "workers", "remote"},
    "sense": {*BASE, "sandbox", "sessions", "workers", "remote"},
    "loop": {*BASE, "sandbox", "sessions", "workers", "remote", "act", "decide", "sense", "seed"},
    "demo": {*BASE, "loop", "seed"},
    "tui": {*BASE, "sandbox", "sessions", "workers", "remote", "act", "loop"},
    "web": {*BASE, "sandbox", "sessions", "workers", "remote", "act", "decide", "loop", "seed"},
    "cli": {
        *BASE,
        *("sandbox", "sessions", "workers", "remote", "act", "decide", "sense", "loop", "seed"),
        *("demo", "tui", "web"),
    },
    # the top floor, beside cli/: the console entry
    "verbs": {
        *BASE,
        *("sandbox", "sessions", "workers", "remote", "act", "decide", "sense", "loop", "seed"),
        *("demo", "tui", "web", "cli"),
    },
    "(top)": {"verbs"},  # `python -m looop`
}

# Every load made inside a function: the house's whole laziness, one row per load (its `# lazy:`
# comment says why: tests/unit/test_imports.py). Everything else imports at the top. A new row
# fails until it is listed here; a row no longer made fails until it leaves.
LAZY: list[tuple[str, str]] = [
    # optional or heavy extras: only the verb or the config that uses one pays for it
    ("looop.web", "looop.web.mcpserver"),  # the MCP SDK: `mcp --worker` speaks without it
    ("looop.home.screenrules", "regex"),  # a runner's own needs-input patterns
    ("looop.home.hashing", "hashlib"),  # OpenSSL: the beat hashes, contract verbs only name
    ("looop.home.errors", "difflib"),  # did you mean: only a mistyped verb, key or id
    ("looop.sessions.client", "looop.sessions.screen"),  # avt: a log replayed
    ("looop.home.config", "by name: ?"),  # an extra's module (k8s, mcp, notify); missing: a line
    ("looop.remote.hosts", "by name: yaml"),  # a --pod-template file: PyYAML comes with k8s
    ("looop.remote.shim", "looop.remote.kube.homecall"),  # ssl, http.client in a pod
    ("looop.workers.backend", "looop.sessions.attach"),  # termios: an attach only
    ("looop.sessions.pump", "threading"),  # a burst's: in the host, ~200 kB a fork
    ("looop.workers.backend", "looop.workers.review"),  # git, the review: a diff or review only
    ("looop.runners.opencode", "sqlite3"),  # its store: resume's finder and the meter only
    # the verb tables: a process loads the verb it runs
    ("looop.contract.verbs", "by name: ?"),  # a contract verb's module
    ("looop.act.actiontable", "by name: ?"),  # a move's declaration, when its tag is used
    ("looop.verbs.console", "looop.cli.root"),  # every other verb: click
    ("looop.verbs.console", "looop.remote.boxdoor"),  # a boxed worker's contract verb
    ("looop.cli.root", "by name: ?"),  # click's verbs, each loaded when run
    ("looop.cli.satellite", "by name: ?"),  # a host's start, change, review and land ops
    ("looop.act.landaway", "looop.act.landfar"),  # a review or land of a worker away
    ("looop.cli.review", "looop.act.roundsend"),  # --send: the session client, a resume
    # a light reader's rare path (each costs a fast verb 0.3-6 ms it rarely needs)
    ("looop.home.stamps", "looop.home.localtime"),  # datetime, zoneinfo: a local time, a zone
    # what a beat decides at run time
    ("looop.loop.tick", "looop.loop.deciding"),  # the world changed
    ("looop.loop.housekeep", "looop.loop.fleetwork"),  # workers or verify work to tend
    ("looop.sense.probes", "looop.human"),  # schedules exist: cron
    ("looop.sense.sensors", "looop.sandbox.worker"),  # a decision's sensor runs boxed (srt)
    # hosts exist: the SSH and Kubernetes rooms and a start's way there, through one door
    ("looop.remote", "looop.remote.engine"),
]
# Import statements inside functions: the rows above but those loaded by name.
LAZY_MAX = 20

# Parts of one room that never import each other, either way (a package and its modules).
INDEPENDENT: list[tuple[str, str]] = [
    ("looop.remote.ssh", "looop.remote.kube"),  # two ways to run a worker away from home
]
# (importer, imported) that break INDEPENDENT today. What both need (the hosts registry,
# placement, dispatch) lives in the room's shared part, `remote/` itself.
INDEPENDENT_DEBT: set[tuple[str, str]] = set()

# Packages that are one module split into files for size: their files share private names.
PRIVATE_WITHIN: set[str] = {"looop.act.shellguard"}
# (importer, defining module) that still import a private name from another module today.
PRIVATE_DEBT: set[tuple[str, str]] = set()

# Circles among modules closed only by function-level imports today (at load time: none).
CIRCLES_DEBT: set[frozenset[str]] = set()  # none left: a new circle is broken, not listed

# ---- reading the source -----------------------------------------------------------------------


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


@functools.cache  # ~1,700 calls a run over 340 modules
def _names(path: Path, top_level_only: bool) -> tuple[tuple[str, str | None], ...]:
    """(module, name) for each `from looop.m import name`; (module, None) for `import looop.m`."""
    tree = sourcetree.tree(path)
    nodes = tree.body if top_level_only else sourcetree.nodes(path)
    found: list[tuple[str, str | None]] = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(a.name, None) for a in node.names if a.name.startswith("looop")]
        elif (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and (node.module or "").startswith("looop")
        ):
            found += [(node.module or "", a.name) for a in node.names]
    return tuple(found)


def _imports(path: Path, top_level_only: bool) -> set[str]:
    """The modules named, and `module.name` for each name (a submodule when there is one)."""
    found: set[str] = set()
    for module, name in _names(path, top_level_only):
        found.add(module)
        if name is not None:
            found.add(f"{module}.{name}")
    return found


def _graph(top_level_only: bool) -> dict[str, set[str]]:
    """Module -> the modules it imports: `from looop.pkg import mod` is an arrow to the
    module, not to its package as well."""
    modules = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for module, imported in _names(path, top_level_only):
            sub = f"{module}.{imported}"
            target = sub if imported is not None and sub in modules else module
            if target in modules and target != name:
                graph[name].add(target)
    return graph


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _circles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """Tarjan's strongly connected groups of more than one module; a package importing its
    own submodules is not a circle with them."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[frozenset[str]] = set()

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group: set[str] = set()
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.add(top)
                if top == node:
                    break
            nested = all(_within(m, node) or _within(node, m) for m in group)
            if len(group) > 1 and not nested:
                found.add(frozenset(group))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return found


# ---- the checks -------------------------------------------------------------------------------


def test_every_import_follows_the_rooms_arrows() -> None:
    modules = _modules()
    breaks = []
    for name, path in sorted(modules.items()):
        room = _room(name)
        assert room in ROOMS, f"{name}: room '{room}' is not in the contract"
        for target in _imports(path, top_level_only=False):
            if target not in modules:
                continue  # `from looop.x import name` also yields looop.x.name
            other = _room(target)
            if target == "looop":
                continue  # the package itself (its version) is every room's
            if other != room and other not in ROOMS[room]:
                breaks.append(f"{name} -> {target}")
    assert breaks == []


def test_the_verbs_import_from_above_nobody() -> None:
    """The faces are the top floor: no room imports them (the console script and
    `python -m looop` start there)."""
    modules = _modules()
    found = [
        f"{name} -> {target}"
        for name, path in sorted(modules.items())
        if _room(name) not in ("verbs", "(top)")
        for target in _imports(path, top_level_only=False)
        if target in modules and _room(target) == "verbs"
    ]
    assert found == []


def test_independent_parts_import_neither_way() -> None:
    graph = _graph(top_level_only=False)
    found = {
        (a, b)
        for one, other in INDEPENDENT
        for a, targets in graph.items()
        for b in targets
        if (_within(a, one) and _within(b, other)) or (_within(a, other) and _within(b, one))
    }
    assert found - INDEPENDENT_DEBT == set(), "a new import between independent parts"
    assert INDEPENDENT_DEBT - found == set(), "paid debt: take it off INDEPENDENT_DEBT"


def test_no_private_name_crosses_modules() -> None:
    modules = _modules()
    found: set[tuple[str, str]] = set()
    for name, path in modules.items():
        for module, imported in _names(path, top_level_only=False):
            if imported is None or not imported.startswith("_") or imported.startswith("__"):
                continue
            if f"{module}.{imported}" in modules or module == name:
                continue  # a private submodule, or the module itself
            if any(_within(name, p) and _within(module, p) for p in PRIVATE_WITHIN):
                continue
            found.add((name, module))
    assert found - PRIVATE_DEBT == set(), "a new private name imported across modules"
    assert PRIVATE_DEBT - found == set(), "paid debt: take it off PRIVATE_DEBT"


def test_no_import_circle_at_load_time() -> None:
    assert _circles(_graph(top_level_only=True)) == set()


def test_the_only_circles_are_the_listed_ones() -> None:
    """A function-level import hides a circle from the loader, not from the house."""
    found = _circles(_graph(top_level_only=False))
    assert found - CIRCLES_DEBT == set(), "a new import circle: break it, do not hide it"
    assert CIRCLES_DEBT - found == set(), "a broken circle: take it off CIRCLES_DEBT"


# ---- laziness -----------------------------------------------------------------------------------


def _type_only(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


def _loads(node: ast.AST) -> str | None:
    """What an import statement loads (its first module), or `by name: ...` for
    `__import__(...)` and `importlib.import_module(...)` (`?`: a name known at run time only);
    None when `node` loads nothing."""
    if isinstance(node, ast.Import):
        return node.names[0].name
    if isinstance(node, ast.ImportFrom):
        return "." * node.level + (node.module or "")
    if isinstance(node, ast.Call):
        f = ast.unparse(node.func)
        if f in ("__import__", "importlib.import_module") and node.args:
            arg = node.args[0]
            return f"by name: {arg.value if isinstance(arg, ast.Constant) else '?'}"
    return None


def _lazy_loads() -> list[tuple[str, str]]:
    """(module, what it loads) for every load made inside a function, `if TYPE_CHECKING:`
    blocks aside: statements and calls alike, one row each."""
    found: list[tuple[str, str]] = []

    def visit(name: str, node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_only(child):
                continue
            loads = _loads(child) if in_function else None
            if loads is not None:
                found.append((name, loads))
            inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            visit(name, child, inner)

    for name, path in _modules().items():
        visit(name, sourcetree.tree(path), False)
    return sorted(found)


def test_every_lazy_load_is_listed_and_they_stay_few() -> None:
    found, listed = Counter(_lazy_loads()), Counter(LAZY)
    new = sorted((found - listed).elements())
    assert new == [], "a new function-level import: put it at the top, or list it in LAZY"
    gone = sorted((listed - found).elements())
    assert gone == [], "no longer made: take it off LAZY"
    statements = [row for row in LAZY if not row[1].startswith("by name: ")]
    assert len(statements) <= LAZY_MAX, f"{len(statements)} lazy imports: at most {LAZY_MAX}"


def test_the_architecture_doc_points_here_and_copies_nothing() -> None:
    doc = (SRC.parents[1] / "docs" / "ARCHITECTURE.md").read_text()
    assert "tests/unit/test_layering.py" in doc
    copies = [ln for ln in doc.splitlines() if ln.startswith("| `") and "/` → |" in ln]
    assert copies == [], "the arrows live in tests/unit/test_layering.py only"
