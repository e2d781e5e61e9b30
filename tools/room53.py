"""Issue 53's sandbox room: srt's wrapping, the box host, the network filter and the box's door,
the boxed decider, the boxed worker and its terminal moved into `src/looop/sandbox/`, and every
name of them rewritten across src/ tests/ bench/ tools/ docs/.

    .venv/bin/python tools/room53.py

which then has ruff sort and format what it rewrote and redraws the house picture
(tools/house.py --write).

Run it again after merging a branch made before the move: git's rename detection carries that
branch's edits of a moved file to its new place, and this rewrites what the branch still names
by the old paths (`from looop.core.srt import`, `import looop.core.sbxhost`, the `-m
looop.core.sbxrun` strings, `core/netfilter.py` in prose). It is idempotent: a file is moved
only while it is still at its old place, and no new name matches an old one. It touches only
files git tracks. Once every branch of that time is merged, delete it.

The room sits below `workers/` (eight of its modules import srt). `workers/sandbox.py` moved
whole as `sandbox/worker.py`, then two of its functions went back up by hand, each reading
what only `workers/` knows (NAMES): `verify_argv` (a verify's walls rebuilt from the worker's
start and worktree records) and `with_note` (the contract as it reads in a box) are
`workers/boxed.py`'s; a branch that edited either in `workers/sandbox.py` merges by hand. A
`from … import` of them is rewritten, a use through the module (`sbx.verify_argv`) is not:
mypy names it.

What stays out of the room, each because moving it would make an arrow run up:
`remote/boxdoor.py` (the box's side of its door is the call-home client every far worker
shares), `remote/ssh/boxed.py` (an SSH host's box), `home/sandboxpolicy.py` and
`home/boxfolder.py` (the config and the light readers on the ground floor read them),
`core/doorruns.py` (every door's runs, not only the box's)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# old module -> new module. Names in the room's words: `sbx` spelled out as the box's.
MOVES: dict[str, str] = {
    "looop.core.srt": "looop.sandbox.srt",
    "looop.core.sbxhost": "looop.sandbox.boxhost",
    "looop.core.sbxrun": "looop.sandbox.boxrun",
    "looop.core.netfilter": "looop.sandbox.netfilter",
    "looop.core.netjoin": "looop.sandbox.netjoin",
    "looop.core.netns": "looop.sandbox.netns",
    "looop.core.netproxy": "looop.sandbox.netproxy",
    "looop.core.netrules": "looop.sandbox.netrules",
    "looop.core.netboxes": "looop.sandbox.netboxes",
    "looop.core.door": "looop.sandbox.door",
    "looop.core.endpoints": "looop.sandbox.endpoints",
    "looop.decide.tickbox": "looop.sandbox.tickbox",
    "looop.workers.sandboxtty": "looop.sandbox.boxtty",
    "looop.workers.ptyrelay": "looop.sandbox.ptyrelay",
    # the boxed worker: srt's settings for a worker, run_shell, a sensor and a verify
    "looop.workers.sandbox": "looop.sandbox.worker",
    "looop.workers.treesandbox": "looop.sandbox.checkout",
}
# names that left their module for another: what reads a worker's records stays in workers/
NAMES: dict[str, str] = {
    "looop.workers.sandbox.verify_argv": "looop.workers.boxed.verify_argv",
    "looop.workers.sandbox.with_note": "looop.workers.boxed.with_note",
}
# files that are no module (old path -> new path, under src/looop)
FILES: dict[str, str] = {
    "core/sbxhost.mjs": "sandbox/boxhost.mjs",
    "workers/boxwait.pl": "sandbox/boxwait.pl",
}
# the tests of the moved modules, beside them in the tests' own tree
TESTS: dict[str, str] = {
    "tests/unit/core/test_door.py": "tests/unit/sandbox/test_door.py",
    "tests/unit/core/test_endpoints.py": "tests/unit/sandbox/test_endpoints.py",
    "tests/unit/core/test_netboxes.py": "tests/unit/sandbox/test_netboxes.py",
    "tests/unit/core/test_netns.py": "tests/unit/sandbox/test_netns.py",
    "tests/unit/core/test_netrules.py": "tests/unit/sandbox/test_netrules.py",
    "tests/unit/core/test_netrules_props.py": "tests/unit/sandbox/test_netrules_props.py",
    "tests/unit/core/test_sbxhost.py": "tests/unit/sandbox/test_boxhost.py",
    "tests/unit/workers/test_box_line.py": "tests/unit/sandbox/test_box_line.py",
    "tests/unit/workers/test_ptyrelay_start.py": "tests/unit/sandbox/test_ptyrelay_start.py",
    "tests/unit/workers/test_sandbox_policy.py": "tests/unit/sandbox/test_sandbox_policy.py",
    "tests/unit/workers/test_srt_guarded.py": "tests/unit/sandbox/test_srt_guarded.py",
}
# a renamed module's old name as a word in code and prose (`sbxhost.wrap(...)`), not in a
# path, a dotted name or a process title (`looop-sbxhost` is the node host's, unchanged)
WORDS: dict[str, str] = {"sbxhost": "boxhost", "sbxrun": "boxrun", "sandboxtty": "boxtty"}
# the room: it imports the ground floor and core; every room above workers' floor may import it
ROOM = "sandbox"
ROOM_DOC = '"""The sandbox: every box looop starts (a worker, run_shell, a sensor, a verify, the\n'
ROOM_DOC += 'decider) wrapped by srt, its network through the home\'s filter, its door home."""\n'
IMPORTERS = ("decide", "workers", "remote", "act", "sense", "loop", "tui", "web", "cli", "verbs")

SUFFIXES: tuple[str, ...] = (".py", ".md", ".toml", ".txt", ".cfg", ".sh", ".yaml", ".yml")
SUFFIXES += (".json", ".mjs", ".pl", "Makefile")
# files that name the old names on purpose (this table; the record of why, as it was then)
SKIP = {"tools/room53.py", "docs/DECISIONS.md"}


def new_module(old: str) -> str | None:
    """The module `old` is now, or None when no row moved it."""
    routes = MOVES | NAMES
    best = max((k for k in routes if old == k or old.startswith(k + ".")), key=len, default=None)
    return None if best is None else routes[best] + old[len(best) :]


_OLD = "|".join(re.escape(k) for k in sorted(MOVES | NAMES, key=len, reverse=True))
_DOTTED = re.compile(rf"\b(?:{_OLD})\b(?:\.\w+)*")
_FROM = re.compile(r"^([ \t]*)from (looop(?:\.\w+)+) import (?:\(([^)]*)\)|([^(\n][^\n]*))$", re.M)


def _split_from(m: re.Match[str]) -> str:
    """`from looop.core import proc, srt` where proc stays and srt moved: one line each (ruff's
    isort merges what it can afterwards). A renamed module is imported by its new name."""
    indent, package, names = m.group(1), m.group(2), m.group(3) or m.group(4)
    home = new_module(package) or package
    comment = names.partition("#")[2] if "\n" not in names else ""
    code = "\n".join(line.partition("#")[0] for line in names.split("\n"))
    parts = [n.strip() for n in code.replace("\n", " ").split(",") if n.strip()]

    def moved(part: str) -> tuple[str, str]:
        name, _, alias = part.partition(" as ")
        full = new_module(f"{package}.{name.strip()}")
        if full is None:
            return home, part
        parent, _, new = full.rpartition(".")
        if alias:
            return parent, f"{new} as {alias.strip()}"
        # a renamed module keeps its old name in the code, unless WORDS renames every use
        return parent, new if new == name.strip() or name.strip() in WORDS else f"{new} as {name}"

    if not parts or all(moved(p) == (home, p) for p in parts):
        return m.group(0)  # one package still: the dotted rule renames it, comments kept
    lines = [f"{indent}from {' import '.join(moved(p))}" for p in parts]
    if comment:
        lines[-1] += f"  #{comment}"
    return "\n".join(lines)


def _path_rules() -> list[tuple[re.Pattern[str], str]]:
    """`core/srt.py`, `src/looop/core/sbxhost.mjs`, `core/endpoints` as paths, longest first."""
    pairs = {
        o.removeprefix("looop.").replace(".", "/"): n.removeprefix("looop.").replace(".", "/")
        for o, n in MOVES.items()
    }
    for o, n in NAMES.items():  # `workers/sandbox.verify_argv` in prose
        (om, oname), (nm, nname) = o.rsplit(".", 1), n.rsplit(".", 1)
        pairs[f"{om.removeprefix('looop.').replace('.', '/')}.{oname}"] = (
            f"{nm.removeprefix('looop.').replace('.', '/')}.{nname}"
        )
    pairs |= FILES
    pairs |= TESTS
    return [
        (re.compile(rf"(?<![\w.-]){re.escape(o)}(?![\w-])"), n)
        for o, n in sorted(pairs.items(), key=lambda kv: -len(kv[0]))
    ]


PATHS = _path_rules()
_WORDS = [(re.compile(rf"(?<![\w/.-]){re.escape(o)}(?![\w-])"), n) for o, n in WORDS.items()]


def rewrite(text: str, python: bool) -> str:
    if python:
        text = _FROM.sub(_split_from, text)
    text = _DOTTED.sub(lambda m: new_module(m.group(0)) or m.group(0), text)
    for pattern, repl in PATHS + _WORDS:
        text = pattern.sub(repl, text)
    return text


def _git(*args: str) -> str:
    ran = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True)
    return ran.stdout


def _file(module: str) -> str:
    return f"src/{module.replace('.', '/')}.py"


def move_files() -> int:
    """`git mv` each file still at its old place (a branch's copy merged back there too)."""
    rows = {_file(o): _file(n) for o, n in MOVES.items()}
    rows |= {f"src/looop/{o}": f"src/looop/{n}" for o, n in FILES.items()}
    rows |= TESTS
    moved = 0
    for old, new in rows.items():
        if not (ROOT / old).exists():
            continue
        init = Path(new).parent / "__init__.py"
        if not (ROOT / init).exists():  # the room's package, and its tests'
            (ROOT / init).parent.mkdir(parents=True, exist_ok=True)
            (ROOT / init).write_text(ROOM_DOC if init.parts[0] == "src" else "", encoding="utf-8")
            _git("add", str(init))
        if (ROOT / new).exists():
            sys.exit(f"room53: both {old} and {new} exist: merge them by hand, then run again")
        _git("mv", old, new)
        moved += 1
    return moved


def _rooms_block(text: str) -> tuple[int, int]:
    start = text.index("ROOMS: dict[str, set[str]] = {")
    return start, text.index("\n}\n", start)


def allow_room(text: str) -> str:
    """tests/unit/test_layering.py's ROOMS: the room above core, below every importer."""
    start, end = _rooms_block(text)
    block = text[start:end]
    if f'"{ROOM}":' in block:
        return text
    lines, room = [], ""
    for line in block.split("\n"):
        key = re.match(r'\s*"([\w()]+)": \{', line)
        if key:
            room = key.group(1)
        if room in IMPORTERS and '"core"' in line and f'"{ROOM}"' not in line:
            if line.strip() == '"core",':
                lines += [line, line.replace('"core"', f'"{ROOM}"')]
                continue
            line = line.replace('"core"', f'"core", "{ROOM}"', 1)
        lines.append(line)
        if key and room == "core":
            lines.append(f'    "{ROOM}": {{"home", "core"}},  # srt, the box host, the filter')
    return text[:start] + "\n".join(lines) + text[end:]


def main() -> int:
    moved = move_files()
    changed = 0
    for rel in _git("ls-files").split():
        path = ROOT / rel
        if rel in SKIP or not rel.endswith(SUFFIXES) or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        new = rewrite(text, rel.endswith(".py"))
        if rel == "tests/unit/test_layering.py":
            new = allow_room(new)
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed += 1
    print(f"room53: {moved} files moved, {changed} files rewritten")
    return tidy()


def tidy() -> int:
    """ruff's isort merges the split imports; the house picture names the new room."""
    trees = ["src", "tests", "bench", "tools"]
    ruff = [sys.executable, "-m", "ruff"]
    subprocess.run([*ruff, "check", "--fix-only", "-q", *trees], cwd=ROOT)
    subprocess.run([*ruff, "format", "-q", *trees], cwd=ROOT)
    if subprocess.run([*ruff, "check", "-q", *trees], cwd=ROOT).returncode != 0:
        print("room53: ruff left the above to fix by hand (a longer path in prose)")
    return subprocess.run([sys.executable, "tools/house.py", "--write"], cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main())
