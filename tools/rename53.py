"""Issue 53's renames applied to a tree's text: module paths, file paths and room names.

The house was renamed with `git mv` (pure moves, so git sees them); this rewrites what names
the moved modules. A branch made before the renames is merged with git's rename detection and
then brought up to date by running this over it:

    python tools/rename53.py
    ruff check --fix -q src tests bench tools; ruff format -q src tests bench tools

It is idempotent (a new name never matches an old one) and touches only files git tracks. Once
every branch of that time is merged, delete it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# old module -> new module, as on main before issue 53. A row names a module or a package; the
# longest old name that prefixes a module wins, so a module row beats its package's row.
MOVES: dict[str, str] = {
    "looop.hot": "looop.home",
    # the console entry and the click-free verb faces: the top floor, named by verb
    "looop.hot.boot": "looop.verbs.console",
    "looop.hot.main": "looop.verbs.table",
    "looop.hot.showstatus": "looop.verbs.status",
    "looop.hot.showfleet": "looop.verbs.ls",
    "looop.hot.tickfast": "looop.verbs.tick",
    "looop.hot.killfast": "looop.verbs.kill",
    "looop.hot.workerstart": "looop.verbs.worker",
    "looop.hot.drivelive": "looop.verbs.screen",
    "looop.hot.drivelog": "looop.verbs.log",
    # names in looop's words
    "looop.hot.wire": "looop.home.sessionfiles",
    "looop.hot.ops": "looop.home.control",
    "looop.hot.cost.glance": "looop.home.cost.statusspend",
    "looop.sessions.osseam": "looop.sessions.oscalls",
    "looop.remote.ssh.farstart": "looop.remote.ssh.start",
    "looop.remote.kube.gohome": "looop.remote.kube.homecall",
    # the shapes the home's readers name in their hints, moved down to the home
    "looop.loop.views": "looop.home.views",
    "looop.decide.cost.views": "looop.home.cost.views",
    "looop.core.eventnames": "looop.home.eventnames",
}
# the same modules by their names between the two renames (a branch made from this one's middle)
MOVES.update({"looop.home" + k[9:]: v for k, v in MOVES.items() if k.startswith("looop.hot.")})
# old room -> new room: the quoted room names of the house's contract (tests, tools)
ROOMS: dict[str, str] = {"hot": "home"}

SUFFIXES = (".py", ".md", ".toml", ".txt", ".cfg", ".sh", ".yaml", ".yml", ".json", "Makefile")
# files that name the old names on purpose (this table, the test keeping them out, the why)
SKIP = {"tools/rename53.py", "tests/unit/test_names.py", "docs/DECISIONS.md"}


def new_module(old: str) -> str | None:
    """The module `old` is now, or None when no row moved it."""
    best = max((k for k in MOVES if old == k or old.startswith(k + ".")), key=len, default=None)
    return None if best is None else MOVES[best] + old[len(best) :]


_OLD = "|".join(re.escape(k) for k in sorted(MOVES, key=len, reverse=True))
_DOTTED = re.compile(rf"\b(?:{_OLD})\b(?:\.\w+)*")
_FROM = re.compile(r"^([ \t]*)from (looop(?:\.\w+)+) import (?:\(([^)]*)\)|([^(\n][^\n]*))$", re.M)


def _split_from(m: re.Match[str]) -> str:
    """`from looop.hot import a, b` where a and b now live in different packages: one line
    each (ruff's isort merges what it can afterwards)."""
    indent, package, names = m.group(1), m.group(2), m.group(3) or m.group(4)
    home = new_module(package) or package
    comment = names.partition("#")[2] if "\n" not in names else ""
    code = "\n".join(line.partition("#")[0] for line in names.split("\n"))
    parts = [n.strip() for n in code.replace("\n", " ").split(",") if n.strip()]

    def moved(part: str) -> tuple[str, str]:
        """(package, what to import) for one name: a renamed module keeps its old name."""
        name = part.split(" as ")[0].strip()
        full = new_module(f"{package}.{name}")
        if full is None:
            return home, part
        parent, _, new = full.rpartition(".")
        return parent, part if new == name else f"{new} as {part.split(' as ')[-1].strip()}"

    if not parts or all(moved(p) == (home, p) for p in parts):
        return m.group(0)  # one package still: the dotted rule renames it, comments kept
    lines = [f"{indent}from {' import '.join(moved(p))}" for p in parts]
    if comment:
        lines[-1] += f"  #{comment}"
    return "\n".join(lines)


def _path_rules() -> list[tuple[re.Pattern[str], str]]:
    """`hot/main.py`, `src/looop/hot/`, `hot/cost/glance.py` as paths, longest first."""
    rules = []
    for old in sorted(MOVES, key=len, reverse=True):
        new = MOVES[old]
        o, n = old.removeprefix("looop.").replace(".", "/"), new.removeprefix("looop.")
        n = n.replace(".", "/")
        rules.append((re.compile(rf"(?<![\w.-]){re.escape(o)}\.py\b"), f"{n}.py"))
        rules.append((re.compile(rf"(?<![\w.-]){re.escape(o)}/"), f"{n}/"))
    return rules


PATHS = _path_rules()
# prose naming the old files and aliases (docstrings, comments, docs)
PROSE = [
    (re.compile(r"(?<![\w/.])sessions/wire\."), "home/sessionfiles."),
    (re.compile(r"(?<![\w/.])wire\.py\b"), "sessionfiles.py"),
    (re.compile(r"(?<![\w/.])wire\.(list_light|load_light|label|live)\b"), r"sessionfiles.\1"),
    (re.compile(r"(?<![\w/.])osseam\.py\b"), "oscalls.py"),
    (re.compile(r"(?<![\w/.])gohome\.py\b"), "homecall.py"),
    (re.compile(r"\(glance\.py\)"), "(statusspend.py)"),
    (re.compile(r"\bglance\.since_stamp\b"), "statusspend.since_stamp"),
    (re.compile(r"the light glance \("), "the light reader ("),
    (re.compile(r"what the glance declines"), "what statusspend declines"),
    (re.compile(r"breakers the glance cannot answer"), "breakers statusspend cannot answer"),
    (re.compile(r"\(farstart's checkout"), "(start's checkout"),
    (re.compile(r"`wire`, `ops`"), "`sessionfiles`, `control`"),
]
QUOTED = [(re.compile(rf"([\"']){re.escape(o)}\1"), rf"\g<1>{n}\g<1>") for o, n in ROOMS.items()]


def rewrite(text: str, python: bool) -> str:
    if python:
        text = _FROM.sub(_split_from, text)
        for pattern, repl in QUOTED:
            text = pattern.sub(repl, text)
    text = _DOTTED.sub(lambda m: new_module(m.group(0)) or m.group(0), text)
    for pattern, repl in PATHS + PROSE:
        text = pattern.sub(repl, text)
    return text


def main() -> int:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    changed = 0
    for rel in listed:
        path = ROOT / rel
        if rel in SKIP or not rel.endswith(SUFFIXES) or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        new = rewrite(text, rel.endswith(".py"))
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed += 1
    print(f"rename53: {changed} files rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
