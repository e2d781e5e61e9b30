"""`looop land ID`: a human lands a worker's change — its branch merged into its base in the
user's repository (a fast-forward or a merge commit), or pushed with a pull request opened by a
configurable command. A human's action only: no decision names it (the action table has no
row for it); a decision may only ask for it.

Everything is checked before anything changes (each refusal one line: a branch that moved under
the worker, a base that is gone or rewritten, a dirty checkout, a conflict, uncommitted work of
the worker's); then the one change runs under a WAL record and is journaled with who approved
it and the commit it produced. A merge is made off to the side (`merge-tree`, `commit-tree`)
and put in place by one compare-and-swap of the base branch (or a fast-forward of the checkout
that holds it), so a landing is whole or absent."""

import os
import re
import shlex
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from typing import Any, NamedTuple, Protocol, runtime_checkable

from looop.act import landpr
from looop.act.journal import append_journal
from looop.act.landlocal import Here
from looop.act.landpr import LandConfig, land_config
from looop.act.wal import intent
from looop.core.context import Ctx
from looop.home.config import Knobs
from looop.home.errors import LooopError
from looop.sessions.state import SessionError, get_session
from looop.views import outcomes
from looop.workers import reviewgit, reviewrounds
from looop.workers.ids import normalise_target
from looop.workers.review import beside, branch_moved, worker_trees
from looop.workers.treerecord import Tree, git_in, why_failed
from looop.workers.treework import is_dirty, uncommitted
from looop.workers.worktree import checked_out, release

MODES = ("ff", "merge", "pr")  # a fast-forward, a merge commit, a pull request


class LandError(LooopError):
    pass


class NothingToLand(LandError):
    """The base already holds the branch (a worker of several repos: that one is done)."""


class LandConflict(LandError):
    """The branch conflicts with its base; `comment` is what to send the worker about it."""

    def __init__(self, message: str, comment: str) -> None:
        super().__init__(message)
        self.comment = comment


class Approved(NamedTuple):
    """What a human approved: each repository's tip as they saw it, by its folder's name ("":
    a worker of one); `exactly`: that commit lands even when the branch went on (`--at`)."""

    tips: Mapping[str, str]
    exactly: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"tips": dict(self.tips), "exactly": self.exactly}

    @classmethod
    def from_json(cls, obj: Any) -> "Approved":
        """As a home sent it; one line when it is not that."""
        tips = obj.get("tips") if isinstance(obj, dict) else None
        if not isinstance(tips, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in tips.items()
        ):
            raise LandError("land: 'at' must name the tip approved of each repository")
        return cls(tips, obj.get("exactly") is True)


class LandRequest(NamedTuple):
    """One landing as a human asked it: who approved it and from where (`actor`, journaled),
    the tips approved (`at`), how (`mode`; None: as configured, land.merge), into which
    branch (None: the one the user's checkout is on) and, of a worker of several
    repositories, the one to land (`repo`; None: every one)."""

    actor: str
    at: Approved
    mode: str | None = None
    into: str | None = None
    repo: str | None = None


class Plan(NamedTuple):
    tree: Tree
    tip: str  # the worker's branch now
    into: str  # the base branch
    old: str  # the base branch's commit now
    checkout: str  # the checkout holding `into` ("": none)
    mode: str  # "ff", "merge" or "pr"
    ended: str | None = None  # the start of its worker's run, ended when found clean


class Landed(NamedTuple):
    wid: str
    mode: str
    branch: str
    into: str
    commit: str  # what the base branch points at now (merge, ff), or the tip pushed (pr)
    url: str = ""  # the PR command's last line of output
    name: str = ""  # the repository's folder in the workspace of a worker of several
    repo: str = ""  # the repository landed in
    # a worker of several repos: each landing in its order (the fields above: the first's)
    repos: "tuple[Landed, ...]" = ()


def git_at(ctx: Ctx, cwd: str, *args: str) -> tuple[int, str, str]:
    done = git_in(ctx.env, cwd, *args)
    return done.returncode, done.stdout.strip(), why_failed(done) if done.returncode else ""


def _base_branch(ctx: Ctx, tree: Tree, into: str | None) -> tuple[str, str]:
    """The branch to land into (given, or the one the user's checkout is on): one git."""
    rev = "HEAD" if into is None else f"refs/heads/{into}"
    code, out, _ = git_at(ctx, tree.repo, "rev-parse", rev, "--symbolic-full-name", rev)
    old, _, ref = out.partition("\n")
    if code != 0 or not ref.startswith("refs/heads/"):
        raise LandError(
            f"the base branch {into} is gone from {tree.repo} — give --into BRANCH"
            if into is not None
            else f"your checkout at {tree.repo} is on no branch (or on one with no commit "
            "yet) — check out the branch to land into, or give --into BRANCH"
        )
    if (into := ref.removeprefix("refs/heads/")) == tree.branch:
        raise LandError(f"{into} is the worker's own branch — give the base with --into BRANCH")
    return into, old


def check_history(ctx: Ctx, tree: Tree, into: str, old: str, tip: str) -> bool:
    """The base still holds the worker's start and not yet its `tip`; True when the base can
    fast-forward to it (`old` is where `tip` grew from: one merge-base says both)."""
    repo, wid = tree.repo, tree.wid
    # a commit is its own ancestor: git asked only when the base moved since the worker began
    if tree.base != old and git_at(ctx, repo, "merge-base", "--is-ancestor", tree.base, old)[0]:
        raise LandError(
            f"the base branch {into} no longer holds {tree.base[:12]}, where worker {wid} "
            "started (rewritten?) — land it by hand"
        )
    code, common, _ = git_at(ctx, repo, "merge-base", old, tip)
    if code == 0 and common == tip:
        raise NothingToLand(f"{into} already holds worker {wid}'s branch — nothing to land")
    return code == 0 and common == old


def _ended_run(ctx: Ctx, wid: str) -> str | None:
    """The start of the worker's last run once it has ended ("": none known; None: it runs)."""
    try:
        s = get_session(ctx.paths.data, wid)
    except SessionError:
        return ""
    return None if s.alive else s.started_at


def _check_worker(ctx: Ctx, tree: Tree, tip: str, dirty: Callable[[], bool | None]) -> None:
    """`dirty`: whether its worktree holds uncommitted work, as asked (None: unknown; a
    worktree that is gone is clean)."""
    wid = tree.wid
    if tree.clone:
        raise LandError(f"worker {wid} works in a clone on a host — land it there by hand")
    if branch_moved(tree, tip):
        raise LandError(
            f"worker {wid}'s branch {tree.branch} moved under it (now {tip[:12]}, not where "
            f"its checkout left it) — review it again with `looop review {wid}`"
        )
    if dirty() is not False:
        # less its setup's leftovers: never to commit
        left = uncommitted(ctx.env, tree, seen=[]) or []
        files = ", ".join(left[:5]) + (" …" if len(left) > 5 else "")
        ask = shlex.quote(f"commit {files}" if files else "commit your work")
        raise LandError(
            f"worker {wid}'s worktree holds uncommitted work that would not land"
            f"{f' ({files})' if files else ''} — ask it to commit: "
            f"`looop review {wid} --comment-all {ask} --send`"
        )


def approved_tip(ctx: Ctx, tree: Tree, tip: str, at: Approved) -> str:
    """The commit to land: the tip the human approved, which the branch (now at `tip`)
    must still stand at — or, `at.exactly`, any commit of the branch they named."""
    wid, want = tree.wid, at.tips.get(tree.part, "")
    of = f"repo {tree.part} of " if tree.part else ""
    if want == tip:  # as the review saw it: git is not asked again
        return tip
    if not re.fullmatch(r"[0-9a-f]{4,64}", want):
        said = f"{want!r} is no commit's SHA" if want else "no review you saw names the tip"
        raise LandError(
            f"{said} of {of}worker {wid} — `looop review {wid}` shows its change, then land "
            "(or name the commit: --at SHA)"
        )
    got = reviewgit.git(ctx, tree, "rev-parse", "--verify", "--quiet", f"{want}^{{commit}}")
    sha = got.stdout.strip() if got.returncode == 0 else ""
    if sha == tip:
        return tip
    if not sha or reviewgit.git(ctx, tree, "merge-base", "--is-ancestor", sha, tip).returncode:
        raise LandError(
            f"{want[:12]} is not on {of}worker {wid}'s branch {tree.branch} (now at "
            f"{tip[:12]}) — `looop review {wid}` shows what it holds"
        )
    if at.exactly:
        return sha
    n = reviewgit.git(ctx, tree, "rev-list", "--count", f"{sha}..{tip}").stdout.strip()
    raise LandError(
        f"{of}worker {wid}'s branch {tree.branch} has {n} new commit(s) since the review you "
        f"approved (at {sha[:12]}, now {tip[:12]}) — review them (`looop review {wid}`) and "
        f"land again, or `looop land {wid} --at {sha[:12]}` lands only what you reviewed"
    )


def _check_checkout(ctx: Ctx, plan_repo: str, into: str) -> str:
    """The checkout holding `into` ("": none), refused while it has uncommitted changes."""
    where = checked_out(ctx.env, plan_repo).get(into, "")
    if where:
        code, out, why = git_at(ctx, where, "status", "--porcelain", "--untracked-files=no")
        if code != 0:
            raise LandError(f"git status in {where}: {why}")
        if out:
            raise LandError(
                f"your checkout at {where} has uncommitted changes — commit or stash them, "
                "then land"
            )
    return where


def merged_tree(ctx: Ctx, tree: Tree, into: str, old: str, tip: str) -> str:
    """The tree a merge of the two would hold, made off to the side; a conflict refused."""
    code, out, why = git_at(
        ctx, tree.repo, "merge-tree", "--write-tree", "--name-only", "--no-messages", old, tip
    )
    lines = out.splitlines()
    if code == 1 and lines:
        files = ", ".join(lines[1:6]) + (" …" if len(lines) > 6 else "")
        wid = tree.wid
        comment = f"merge {into} into your branch: conflicts in {files}"
        raise LandConflict(
            f"worker {wid}'s branch conflicts with {into} in {files} — send it back: "
            f"`looop review {wid} --comment-all '{comment}' --send`",
            comment,
        )
    if code != 0 or not lines:
        raise LandError(f"git merge-tree in {tree.repo}: {why}")
    return lines[0]


def plan_tree(ctx: Ctx, tree: Tree, ask: LandRequest, mode: str) -> Plan:
    """Every check of landing one checkout's branch at the tip approved, nothing changed;
    its worktree's git status asked beside the base's checks (git in two places at once)."""
    ended = _ended_run(ctx, tree.wid)  # read before its worktree is (Plan.ended)
    live = not tree.clone and not tree.removed and os.path.isdir(tree.path)
    with beside(is_dirty, ctx.env, tree) if live else nullcontext(lambda: False) as dirty:
        tip = reviewgit.branch_tip(ctx, tree)
        into, old = _base_branch(ctx, tree, ask.into)
        ff = check_history(ctx, tree, into, old, tip)  # no commits: nothing to land, said first
        _check_worker(ctx, tree, tip, dirty)
    if (now := approved_tip(ctx, tree, tip, ask.at)) != tip:  # an older commit (--at)
        ff = check_history(ctx, tree, into, old, tip := now)
    checkout = "" if mode == "pr" else _check_checkout(ctx, tree.repo, into)
    return check_mode(ctx, Plan(tree, tip, into, old, checkout, mode, ended), ff)


def check_mode(ctx: Ctx, p: Plan, ff: bool) -> Plan:
    """A fast-forward that cannot be (`ff`: check_history's answer), or a merge that
    conflicts, refused before anything moves."""
    if p.mode == "ff" and not ff:
        raise LandError(
            f"{p.into} moved since worker {p.tree.wid} started: it cannot fast-forward — "
            "land with --merge"
        )
    elif p.mode == "merge":
        merged_tree(ctx, p.tree, p.into, p.old, p.tip)
    return p


def merge_commit(ctx: Ctx, p: Plan, *ident: str) -> str:
    """The merge commit of the plan, made off to the side (`ident`: git's -c options naming
    its author when the checkout names none)."""
    merged = merged_tree(ctx, p.tree, p.into, p.old, p.tip)
    msg = f"Merge {p.tree.branch} into {p.into} (looop worker {p.tree.wid})"
    code, out, why = git_at(
        ctx, p.tree.repo, *ident, "commit-tree", merged, "-p", p.old, "-p", p.tip, "-m", msg
    )
    if code != 0 or not out:
        raise LandError(f"git commit-tree in {p.tree.repo}: {why} — nothing landed")
    return out


def _move_base(ctx: Ctx, p: Plan, new: str) -> None:
    """The base branch to `new`, as one step: the checkout holding it fast-forwards (git
    checks the files first), else the ref moves only if it still stands at `old`."""
    if p.checkout:
        code, _, why = git_at(ctx, p.checkout, "merge", "--ff-only", "--no-edit", "-q", new)
    else:
        ref = f"refs/heads/{p.into}"
        code, _, why = git_at(ctx, p.tree.repo, "update-ref", "-m", "looop land", ref, new, p.old)
    if code != 0:
        raise LandError(f"{p.into} could not move to the landed commit ({why}) — nothing landed")


@runtime_checkable
class Lands(Protocol):  # a change away (act/landfar.py): landed there its engine's way
    def land(self, knobs: Knobs, ask: LandRequest) -> Landed: ...


def land(c: Here, knobs: Knobs, ask: LandRequest, cfg: LandConfig | None = None) -> Landed:
    """Land worker `c.wid`'s change as `ask` says, at the tips it approved, where its checkouts
    are (act/landaway.py `change_of`): here, or away its engine's way. `cfg`: how to land here
    (None: this data dir's config; a host's satellite lands as its home's config says)."""
    if isinstance(c, Lands):
        return c.land(knobs, ask)
    ctx, wid = c.ctx, normalise_target(c.wid)
    if cfg is None:
        cfg = land_config(ctx.config().raw)
    trees = worker_trees(ctx, wid)
    if len(trees) > 1 or ask.repo is not None:
        return _land_several(ctx, knobs, cfg, trees, ask)
    p = plan_tree(ctx, trees[0], ask, ask.mode or cfg.merge)
    done = land_one(ctx, knobs, cfg, p, ask.actor)
    settle(ctx, knobs, done, ask.actor)
    if done.mode != "pr":  # a pull request is not landed yet: its worktree may be needed
        tidy(ctx, p.tree, p.ended)
    return done


def outcome_landed(ctx: Ctx, done: Landed) -> None:
    """Landed overrides how it ended (views/outcomes.py): a worker that ended is recounted as
    landed; a live one is landed when it ends. A pull request is proposed until merged."""
    data, wid = str(ctx.paths.data), done.wid
    try:
        gen: str | None = get_session(ctx.paths.data, wid).started_at
    except SessionError:
        gen = None
    how: dict[str, Any] = {"mode": done.mode, "into": done.into, "commit": done.commit}
    if done.mode == "pr":  # proposed until each base holds it (loop/ended.promote_proposed)
        how["heads"] = [[d.repo, d.into, d.commit] for d in done.repos or (done,)]
    try:
        was = outcomes.mark_landed(data, wid, gen, how)
    except OSError as e:  # the landing stands; its outcome is said unwritten
        ctx.events.emit("warn", "worker.ended", f"worker {wid}'s outcome not recorded: {e}")
        return
    if was is not None:
        now = outcomes.read_record(data, wid) or {}
        ctx.events.emit("ok", "worker.ended", f"worker {wid}: {was} → {now.get('outcome')}", id=wid)
        ctx.events.record("worker_ended", id=wid, outcome=now.get("outcome"), was=was)


def settle(ctx: Ctx, knobs: Knobs, done: Landed, actor: str) -> None:
    """Landed whole: its outcome recorded, and the decider's proposal of it, if one waits,
    answered with what landed: the human's approval is the landing itself
    (workers/reviewrounds.py)."""
    outcome_landed(ctx, done)
    said = "; ".join(
        (f"{d.name}: " if d.name else "")
        + (f"pull request {d.url} ({d.commit})" if d.mode == "pr" else f"{d.into} at {d.commit}")
        for d in done.repos or (done,)
    )
    said = f"{'proposed' if done.mode == 'pr' else 'landed'}: {said}"
    ask = reviewrounds.answer_landed(ctx, done.wid, said)
    if ask is not None:  # an answer is an event; the landing itself is journaled
        line = f"{actor}: answered the landing proposal {ask}: {said}"
        ctx.events.record("answer", id=ask, actor=actor, line=line)


def land_one(
    ctx: Ctx, knobs: Knobs, cfg: LandConfig, p: Plan, actor: str, links: str = ""
) -> Landed:
    """One checkout's branch landed as planned, under its WAL record, then journaled.
    `links`: what a pull request's body says of the worker's other repositories."""
    wid, name = p.tree.wid, p.tree.part
    key = f"{wid}:{name}:{p.tip}" if name else f"{wid}:{p.tip}"
    of = f" repo {name}" if name else ""
    summary = f"land worker {wid}{of} ({p.tree.branch} into {p.into}, {p.mode})"
    with intent(ctx, actor, "land", key, summary):
        if p.mode == "pr":
            url = landpr.push_and_open(ctx, cfg, p.tree, p.tip, p.into, links)
            done = Landed(wid, "pr", p.tree.branch, p.into, p.tip, url, name, p.tree.repo)
        else:
            new = p.tip if p.mode == "ff" else merge_commit(ctx, p)
            _move_base(ctx, p, new)
            done = Landed(wid, p.mode, p.tree.branch, p.into, new, "", name, p.tree.repo)
    journal_landed(ctx, knobs, done, actor)
    return done


def journal_landed(
    ctx: Ctx, knobs: Knobs, done: Landed, actor: str, host: str = "", where: str = ""
) -> None:
    """One landing journaled (who approved it, from where, the commit) and recorded;
    `host`: the SSH host whose repository it landed in; `where`: else the place it was
    landed from ("in pod job/… (k8s://…)")."""
    how = {"ff": "fast-forward", "merge": "merge commit", "pr": "pull request"}[done.mode]
    did = "proposed" if done.mode == "pr" else "landed"  # landed once its base holds it
    url = f" {done.url}" if done.url else ""
    of = f" repo {done.name} ({done.repo})" if done.name else ""
    on = f" on host {host}" if host else f" {where}" if where else ""
    append_journal(
        ctx,
        knobs,
        f"{actor}: {did} worker {done.wid}{on}:{of} {done.branch} into {done.into} as {how} "
        f"at {done.commit[:12]}{url}",
    )
    said = {"id": done.wid, "mode": done.mode, "into": done.into, "commit": done.commit}
    more = {"repo": done.repo if done.name else "", "host": host, "place": where}
    ctx.events.record("worker_landed", **said, actor=actor, **{k: v for k, v in more.items() if v})


def tidy(ctx: Ctx, tree: Tree, ended: str | None = None) -> None:
    """A merged worker that no longer runs needs its worktree no more: removed now, its
    branch kept (it is in the base). A live one keeps it until its session is reaped.
    `ended`: the run that had ended before its worktree was found clean (Plan.ended); while
    it is still the last, none wrote there since, and git is not asked again."""
    if (now := _ended_run(ctx, tree.wid)) is not None:
        release(ctx, tree.wid, tree if ended and now == ended else None)


def refused_in(tree: Tree, e: LandError, more: str = "") -> LandError:
    """One repository's refusal as the landing of several says it: naming the checkout, the
    whole landing refused (a conflict's comment to send back names it too)."""
    said = f"repo {tree.part}: {e} — nothing landed in any repository{more}"
    if isinstance(e, LandConflict):
        return LandConflict(said, f"in {tree.part}/: {e.comment}")
    return LandError(said)


def chosen_trees(trees: list[Tree], only: str | None) -> list[Tree]:
    """The repositories `--repo NAME` names (all when None); one line when it names none."""
    wid, names = trees[0].wid, ", ".join(t.part for t in trees)
    if only is None:
        return trees
    if len(trees) == 1:
        raise LandError(f"worker {wid} works in one repository — leave --repo out")
    got = [t for t in trees if t.part == only]
    if not got:
        raise LandError(f"worker {wid} has no repository {only!r} — give one of: {names}")
    return got


def checked_plans(
    trees: list[Tree], plan: Callable[[Tree], Plan], alone: bool = True
) -> list[Plan]:
    """Every repository's checks before anything changes: one refused refuses the landing
    (nothing lands anywhere), naming the repository (`alone`: and how to land the others
    alone; else one repository's refusal is said as it is); one whose base already holds
    its branch (landed before) is left out."""
    out: list[Plan] = []
    for tree in trees:
        try:
            out.append(plan(tree))
        except LandError as e:
            if not alone and len(trees) == 1:
                raise
            if isinstance(e, NothingToLand):
                continue
            others = [t.part for t in trees if t is not tree] if alone else []
            hint = f"; land the others alone with --repo NAME ({', '.join(others)})"
            raise refused_in(tree, e, hint if others else "") from None
    if not out:
        raise NothingToLand(
            f"worker {trees[0].wid}: every base already holds its branch — nothing to land"
        )
    return out


def _land_several(
    ctx: Ctx, knobs: Knobs, cfg: LandConfig, trees: list[Tree], ask: LandRequest
) -> Landed:
    """A worker of several repositories: each checked first, then each landed in turn, whole
    or not at all, under its own WAL record. One that fails once others landed stops there:
    those stay landed (said), and landing again lands what is left."""
    wid, only, actor, mode = trees[0].wid, ask.repo, ask.actor, ask.mode or cfg.merge
    plans = checked_plans(chosen_trees(trees, only), lambda t: plan_tree(ctx, t, ask, mode))
    done: list[Landed] = []
    for p in plans:
        urls = [d.url for d in done]
        links = landpr.links(p.tree, [q.tree for q in plans], urls) if p.mode == "pr" else ""
        try:
            done.append(land_one(ctx, knobs, cfg, p, actor, links))
        except LooopError as e:
            landed = ", ".join(d.name for d in done)
            before = f"landed before it: {landed}" if landed else "nothing landed before it"
            again = (
                f"`looop land {wid} --pr --repo {shlex.quote(p.tree.part)}` opens its request"
                if p.mode == "pr"
                else f"`looop land {wid}` again lands what is left"
            )
            raise LandError(f"repo {p.tree.part}: {e} — {before}; {again} once fixed") from None
    if plans[0].mode == "pr":
        opened = [(d.url, d.commit, d.into) for d in done]
        landpr.relink(ctx, cfg, [p.tree for p in plans], opened)
    elif only is None:  # every repository landed: the worker's checkouts are needed no more
        tidy(ctx, trees[0])
    whole = done[0]._replace(repos=tuple(done))
    if only is None:
        settle(ctx, knobs, whole, actor)  # landed once every repository is
    return whole
