"""A worker of several repositories (`--repo A --repo B`): one git worktree of each, side by
side in its workspace <checkouts>/<id>/<name> (name: the repository's folder name, -2, -3 …
when two share one), each on the worker's branch, each made ready as a one-repo worker's is
(its `.worktreeinclude`, its setup). The worker starts in the workspace; its brief names every
checkout. The first repository's record is worktrees/<id>.json and lists the parts in order
(treerecord.py), so what reads one repo's record reads the first; review and land read all."""

from __future__ import annotations

import contextlib
import os

from looop.core.context import Ctx
from looop.workers import worktree as wt
from looop.workers.treerecord import Tree, WorktreeError, record_file


def _name(folder: str, taken: list[str]) -> str:
    """A checkout's folder name: its repository's own, made unique."""
    name = os.path.basename(folder.rstrip("/")) or "repo"
    name = name if not name.startswith(".") else "repo" + name
    unique, n = name, 2
    while unique in taken:
        unique, n = f"{name}-{n}", n + 1
    return unique


def plan_all(
    ctx: Ctx, wid: str, repos: tuple[str, ...], branch: str | None, decided: bool
) -> list[wt.Plan]:
    """Every checkout's plan, nothing changed; one line naming the repository that cannot be
    checked out, or one given twice. Each is named by its repository's top folder (a path
    inside a repository is planned again under that name)."""
    plans: list[wt.Plan] = []
    names: list[str] = []
    for repo in repos:
        guess = _name(wt.resolve_repo(repo, ctx.env), names)
        p = wt.plan(ctx, wid, repo, branch, decided, part=guess)
        top = _name(p.repo, names)
        if top != guess:
            p = wt.plan(ctx, wid, repo, branch, decided, part=top)
        for other in plans:
            if os.path.normpath(other.common) == os.path.normpath(p.common):
                raise WorktreeError(
                    f"worker {wid}: {repo} is the same repository as {other.repo} — give "
                    "each repository once"
                )
        plans.append(p)
        names.append(p.part)
    plans[0] = plans[0]._replace(parts=tuple(names))
    return plans


def workspace(ctx: Ctx, wid: str) -> str:
    return wt.tree_path(ctx, wid)


def create_all(ctx: Ctx, plans: list[wt.Plan]) -> list[Tree]:
    """Each checkout made in turn; one that fails takes back those made before it."""
    made: list[Tree] = []
    try:
        for p in plans:
            made.append(wt.create(ctx, p))
    except WorktreeError:
        undo_all(ctx, made)
        raise
    return made


def undo_all(ctx: Ctx, trees: list[Tree]) -> None:
    """A start that failed after its checkouts were made: each taken back, then its folder."""
    for tree in reversed(trees):
        wt.undo(ctx, tree)
    if len(trees) > 1 or (trees and trees[0].part):
        for folder in (workspace(ctx, trees[0].wid), record_file(ctx, trees[0].wid, "x").parent):
            with contextlib.suppress(OSError):
                os.rmdir(folder)  # only when empty: a record kept (its own branch) stays


def with_note(contract: str, trees: list[Tree], where: str) -> str:
    """The contract with the checkouts the worker's code work goes to, as its last rule
    (`where`: the workspace holding a worker's several)."""
    first = trees[0]
    if len(trees) == 1:
        return _one_note(contract, first)
    rows = "\n".join(
        f"  - `{t.part}/`: a git worktree of {t.repo}, on branch `{t.branch}`" for t in trees
    )
    note = (
        f"**Your worktrees**: you start in your workspace {where}, which holds one git "
        f"worktree of each repository of this task:\n{rows}\n"
        "Do the code work in them and commit in each on its branch (the folder itself holds "
        'only them: scratch files go to "$TMPDIR"); make no other worktree, '
        "and never push, merge or rebase other branches without a yes through `ask`. The data "
        'dir is "$LOOOP_DATA_DIR": deliverables go to "$LOOOP_REPORTS_DIR" (its reports/, not '
        "one here). When the change is ready, say what it does in every repository in "
        f'"$LOOOP_REPORTS_DIR/{first.wid}.md" (the reviewer reads it beside your diffs) and ask '
        f"a human to land `{first.branch}`; review comments come back to you through `told`."
    )
    return place_note(contract, note)


def _one_note(contract: str, tree: Tree) -> str:
    """The contract with where the worker's code work goes, as its last rule."""
    if tree.clone:
        note = (
            f"**Your clone**: you start in your own clone of {tree.origin} ({tree.path}), on "
            f"branch `{tree.branch}`. Do the code work there and commit on that branch; make "
            "no other checkout, and never push, merge or rebase without a yes through `ask`. "
            'The data dir is "$LOOOP_DATA_DIR": deliverables go to "$LOOOP_REPORTS_DIR" (its '
            "reports/, not one here)."
        )
    else:
        note = (
            f"**Your worktree**: you start in your own git worktree of {tree.repo} "
            f"({tree.path}), on branch `{tree.branch}`. Do the code work there and commit on "
            "that branch; make no other worktree, and never push, merge or rebase other "
            'branches without a yes through `ask`. The data dir is "$LOOOP_DATA_DIR": '
            'deliverables go to "$LOOOP_REPORTS_DIR" (its reports/, not one here). When the '
            f'change is ready, say what it does in "$LOOOP_REPORTS_DIR/{tree.wid}.md" (the '
            f"reviewer reads it beside your diff) and ask a human to land `{tree.branch}`; "
            "review comments come back to you through `told`."
        )
    return place_note(contract, note)


# -- the worker contract's one edit: a rule added last (before its closing `---` part)


def last_rule(contract: str, rule: str) -> str:
    """The contract with `rule` as its last "- " rule: before the closing `\\n---\\n` part, or
    at the end when it has none."""
    head, sep, tail = contract.rpartition("\n---\n")
    if not sep:
        head, sep, tail = contract.rstrip("\n"), "\n", ""
    return f"{head.rstrip()}\n- {rule}\n{sep}{tail}"


def replace_rule(contract: str, head: str, rule: str | None) -> str:
    """The contract with its rule that begins `- {head}` (up to the next rule, a blank line
    or the closing part) replaced by `- {rule}`, or dropped when `rule` is None; unchanged
    when it has no such rule."""
    start = contract.find(f"\n- {head}")
    if start < 0:
        return contract
    start += 1
    ends = [contract.find(m, start + 2) for m in ("\n- ", "\n\n", "\n---")]
    end = min((e for e in ends if e >= 0), default=len(contract))
    new = "" if rule is None else f"- {rule}"
    if rule is None and end < len(contract) and contract.startswith("\n- ", end):
        end += 1  # the next rule takes the dropped one's place
    return contract[:start] + new + contract[end:]


def place_note(contract: str, note: str) -> str:
    """The contract with the note on where its code work goes as its last rule, in place of
    the rule it replaces: it makes no worktree of its own."""
    start = contract.find("- **Code work**")
    if start >= 0:
        end = contract.find("\n- ", start)
        contract = contract[:start] + contract[end + 1 :] if end >= 0 else contract
    return last_rule(contract, note)
