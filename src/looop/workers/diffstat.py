"""`looop worker diff --stat` of a worker of several repositories: git's own --stat names a
file by its path in its repository alone, so `README` of two checkouts read the same. Each
file is read as git's --numstat counts it (the same runs `worker diff` makes, treework.py)
and named `REPO/PATH` (REPO its checkout's folder, as the worker sees it), drawn as git
draws a stat: the name, `|`, the count and a bar of + and -, then one total line."""

from __future__ import annotations

from dataclasses import dataclass

from looop.core.context import Ctx
from looop.workers.treegit import GIT_TIMEOUT_S, run_git, why_failed
from looop.workers.treerecord import WorktreeError, load_all
from looop.workers.treework import tree_diff_runs

BAR = 50  # columns of the widest bar, as git's default


@dataclass(frozen=True)
class Counted:
    path: str  # REPO/PATH
    added: int  # -1: binary
    removed: int


def counted(ctx: Ctx, wid: str) -> list[Counted]:
    """Every changed file of every checkout, in the worker's order, with git's counts."""
    out: list[Counted] = []
    for tree in load_all(ctx, wid):
        for argv, env in tree_diff_runs(ctx, tree, ("--numstat",)):
            done = run_git(argv, env, GIT_TIMEOUT_S, f"git diff in {tree.part}", errors="replace")
            if done.returncode > 1:  # 1 is `git diff --no-index` saying the files differ
                raise WorktreeError(f"git diff in {tree.part}: {why_failed(done)}")
            out += [_line(tree.part, ln) for ln in done.stdout.splitlines() if ln.strip()]
    return out


def _line(part: str, line: str) -> Counted:
    added, _, rest = line.partition("\t")
    removed, _, path = rest.partition("\t")
    path = path.removeprefix("/dev/null => ")  # a new file, shown by `--no-index` as such
    if added == "-":  # binary
        return Counted(f"{part}/{path}", -1, 0)
    return Counted(f"{part}/{path}", int(added or 0), int(removed or 0))


def render(files: list[Counted]) -> str:
    """git's --stat drawing of `files` (text), ending in the total line."""
    if not files:
        return ""
    width = max(len(f.path) for f in files)
    most = max((f.added + f.removed for f in files if f.added >= 0), default=0)
    digits = len(str(most)) if most else 1
    lines: list[str] = []
    for f in files:
        if f.added < 0:
            lines.append(f" {f.path.ljust(width)} | Bin")
            continue
        total = f.added + f.removed
        plus, minus = f.added, f.removed
        if most > BAR:  # scaled as git scales: every change keeps at least one mark
            plus = max(1, plus * BAR // most) if plus else 0
            minus = max(1, minus * BAR // most) if minus else 0
        bar = "+" * plus + "-" * minus
        lines.append(f" {f.path.ljust(width)} | {str(total).rjust(digits)} {bar}".rstrip())
    lines.append(_total(files))
    return "\n".join(lines)


def _total(files: list[Counted]) -> str:
    added = sum(f.added for f in files if f.added >= 0)
    removed = sum(f.removed for f in files)
    n = len(files)
    said = f" {n} file{'s' if n != 1 else ''} changed"
    if added:
        said += f", {added} insertion{'s' if added != 1 else ''}(+)"
    if removed:
        said += f", {removed} deletion{'s' if removed != 1 else ''}(-)"
    return said
