"""The satellite's review and land verbs: a worker on an SSH host has its checkouts there, so
its home asks the host (`looop satellite KEY review|land`, JSON in and out) to read the change
and to land it, with the same code a worker at home is reviewed and landed with.

- `review`: the change (Review.to_json), the commits after `since` (the tip the home's last
  round was sent on), and each FILE:LINE comment of `lines` with the lines around it at the
  branch's tip. The rounds stay at the home, which sends them.
- `resume`: a worker that ended here resumed with the round its home sends (`why`).
- `land`: the landing at the tips the human approved (`at`), as the home's config says
  (`land`: its "land" object) and in the host's repository (a pull request pushed from there);
  refused with the one line (and a conflict's comment to send back) as an answer, not an
  error, so the home raises the same kind.

Inside a Kubernetes worker's pod: `looop pod change OP` reads and lands the worker's change
where its checkouts are — clones the init containers made, recorded at `pod run`
(remote/kube/podrun.record_checkouts) — JSON in (base64) and out, for its home (act/landfar.py).

- `review`: as an SSH host's satellite answers it (above).
- `diff`: `looop worker diff`'s text, bounded (workers/review.py).
- `land` ff/merge: the base branch fetched from the URL the clone was made from (the one its
  home's Job names: `urls`, never the clone's `origin`, which the worker can repoint), every
  check a landing at home makes (a tip that moved since the human's review, a base gone or
  rewritten, nothing to land, uncommitted work, a fast-forward that cannot be, a conflict),
  the merge made off to the side, then the base pushed there with a plain push — a
  fast-forward at the remote, so a base that moved meanwhile refuses it and a refused push
  lands nothing. Several repositories: each checked before any is pushed.
- `land` pr: the branch pushed there (as `looop/<id>` when it is the base's own name); the
  request itself is opened by the home, which has the forge's CLI and its credentials.
- `unpush`: a branch the pr landing pushed taken back (the home's PR command failed).

Refusals are answers ({"refused", "kind", "comment"?}), not errors, as the satellite's are. git
runs here as the worker, in its own container: nothing the clone's config names reaches
more than the worker already has."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from looop.act.landing import (
    MODES,
    Approved,
    LandConflict,
    Landed,
    LandError,
    LandRequest,
    NothingToLand,
    Plan,
    approved_tip,
    check_history,
    check_mode,
    checked_plans,
    chosen_trees,
    git_at,
    land,
    merge_commit,
)
from looop.act.landlocal import Here
from looop.act.landpr import land_config, push_branch, remote_git
from looop.core.context import Ctx
from looop.home import jsonio
from looop.home.errors import LooopError
from looop.remote.repospec import check_branch, check_url
from looop.remote.ssh.satellite import worker_id
from looop.workers import reviewgit, reviewsend
from looop.workers.resume import resume_worker
from looop.workers.review import diff_of, review, summary_of, worker_trees
from looop.workers.treerecord import Tree
from looop.workers.treework import is_dirty

_Verb = Callable[[Ctx, str, dict[str, Any]], dict[str, Any]]


def refusal(e: LooopError) -> dict[str, Any]:
    """A landing refused, as a host or a pod answers it (raised again home: act/landfar.py)."""
    if isinstance(e, LandConflict):
        return {"refused": str(e), "kind": "conflict", "comment": e.comment}
    return {"refused": str(e), "kind": "nothing" if isinstance(e, NothingToLand) else "land"}


def there_verb(ctx: Ctx, root: Path, op: str, req: dict[str, Any], version: str) -> dict[str, Any]:
    return _verb(ctx, "satellite", {"review": _review, "land": _land, "resume": _resume}, op, req)


def _verb(
    ctx: Ctx, who: str, verbs: dict[str, _Verb], op: str, req: dict[str, Any]
) -> dict[str, Any]:
    wid = worker_id(req)
    if op not in verbs:
        raise LooopError(f"unknown {who} verb {op!r}")
    return verbs[op](ctx, wid, req)


def _review(ctx: Ctx, wid: str, req: dict[str, Any]) -> dict[str, Any]:
    lines = req.get("lines") or []
    if not isinstance(lines, list) or not all(
        isinstance(x, list) and len(x) == 2 and all(isinstance(y, str) for y in x) for x in lines
    ):
        raise LooopError("review: 'lines' must be a list of [FILE:LINE, TEXT] pairs")
    if lines:  # only the comments: the home drafts them
        tip, got = reviewsend.line_comments(ctx, wid, [(a, b) for a, b in lines])
        return {"tip": tip, "comments": [c._asdict() for c in got]}
    r = review(ctx, wid)
    since = req.get("since")
    after: list[dict[str, Any]] = []
    if isinstance(since, str) and since and since != r.tip:
        try:
            tree = worker_trees(ctx, wid)[0]
            after = [c._asdict() for c in reviewgit.commits(ctx, tree, since, r.tip)]
        except LooopError:
            after = []  # the tip it was sent on is gone (rewritten): the commits say it all
    return {"review": r.to_json(), "since": after}


def _land(ctx: Ctx, wid: str, req: dict[str, Any]) -> dict[str, Any]:
    mode, into, repo = land_words(req, None)
    actor = req.get("actor")
    obj = req.get("land")
    cfg = land_config({"land": obj if isinstance(obj, dict) else {}})
    who = actor if isinstance(actor, str) and actor.isprintable() and actor else "home"
    try:
        ask = LandRequest(who, Approved.from_json(req.get("at")), mode, into, repo)
        done = land(Here(ctx, wid), ctx.knobs(), ask, cfg)
    except LandError as e:
        return refusal(e)
    return {"landed": jsonio.plain(done)}


def land_words(req: dict[str, Any], *modes: str | None) -> tuple[Any, str | None, str | None]:
    """A landing request's mode (one of `modes` or ff, merge, pr), `into` and `repo`."""
    mode, into, repo = (req.get(k) for k in ("mode", "into", "repo"))
    if mode not in (*modes, *MODES):
        raise LooopError(f"land: no way to land called {mode!r}")
    for key, val in (("into", into), ("repo", repo)):
        if val is not None and (not isinstance(val, str) or not val or val.startswith("-")):
            raise LooopError(f"land: {key!r} must be a branch or folder name")
    return mode, into, repo


def _resume(ctx: Ctx, wid: str, req: dict[str, Any]) -> dict[str, Any]:
    """A worker that ended here resumed on its conversation, told `why` first (a review
    round its home sends); "prompt": its resume line took that as its prompt file."""
    why = req.get("why")
    if not isinstance(why, str) or not why.strip():
        raise LooopError("resume: 'why' must be the text the worker is told")
    return {"resumed": wid, "prompt": resume_worker(ctx, ctx.knobs(), wid, why=why).prompt}


NET_TIMEOUT_S = 120.0  # one fetch or push, unless the home says (its land.pr_timeout_s)


def pod_change(ctx: Ctx, op: str, req: dict[str, Any]) -> dict[str, Any]:
    verbs = {"review": _review, "diff": lambda c, w, _: diff_of(c, w), "land": _land_pod}
    return _verb(ctx, "pod change", verbs | {"unpush": _unpush}, op, req)


def _net(
    ctx: Ctx, tree: Tree, verb: str, *args: str, timeout: float = NET_TIMEOUT_S
) -> tuple[bool, str, str]:
    # the URL the clone was made from (its Job's, as the home says it; never a remote the
    # worker could point elsewhere)
    return remote_git(ctx, tree.path, verb, tree.origin, *args, timeout=timeout)


def _base_now(ctx: Ctx, tree: Tree, into: str, timeout: float) -> str:
    ok, _, why = _net(
        ctx, tree, "fetch", "--quiet", "--no-tags", f"refs/heads/{into}", timeout=timeout
    )
    if not ok:
        if "couldn't find remote ref" in why:
            raise LandError(
                f"the base branch {into} is gone from {tree.origin} — give --into BRANCH"
            )
        raise LandError(f"cannot fetch {into} from {tree.origin}: {why} — nothing landed")
    code, old, why = git_at(
        ctx, tree.path, "rev-parse", "--verify", "--quiet", "FETCH_HEAD^{commit}"
    )
    if code != 0 or not old:
        raise LandError(f"git rev-parse FETCH_HEAD in {tree.path}: {why or 'none'}")
    return old


def plan_step(
    ctx: Ctx, tree: Tree, ask: LandRequest, mode: str, timeout: float = NET_TIMEOUT_S
) -> Plan:
    """Every check of landing one clone's branch at the tip approved, nothing changed but a
    fetch (`old`: the base branch at origin now)."""
    wid = tree.wid
    tip = approved_tip(ctx, tree, reviewgit.branch_tip(ctx, tree), ask.at)
    if is_dirty(ctx.env, tree) is not False:
        raise LandError(
            f"worker {wid}'s checkout holds uncommitted work that would not land — ask it to "
            f"commit: `looop review {wid} --comment-all 'commit your work' --send`"
        )
    base = check_branch(ask.into) if ask.into is not None else tree.branch
    old = _base_now(ctx, tree, base, timeout)
    ff = check_history(ctx, tree, base, old, tip)
    return check_mode(ctx, Plan(tree, tip, base, old, "", mode), ff)


def land_step(ctx: Ctx, s: Plan, timeout: float = NET_TIMEOUT_S) -> dict[str, Any]:
    """One clone landed as planned: the base pushed (ff/merge), or the branch (pr)."""
    t = s.tree
    if s.mode == "pr":  # as `looop/<id>` when the worker's branch is the base's own name
        head = t.branch if t.branch != s.into else f"looop/{t.wid}"
        existed = push_branch(ctx, t.path, t.origin, s.tip, head, timeout)
        commits = [c._asdict() for c in reviewgit.commits(ctx, t, t.base, s.tip)]
        done = Landed(t.wid, "pr", head, s.into, s.tip, "", t.part, t.origin)
        summary, _ = summary_of(ctx, t.wid)  # the worker's report, written in its pod
        return {**jsonio.plain(done), "existed": existed, "commits": commits, "summary": summary}
    new = s.tip
    if s.mode == "merge":  # its author as the clone's config names one, else looop
        code, out, _ = git_at(ctx, t.path, "config", "user.email")
        who = (
            []
            if code == 0 and out
            else ["-c", "user.name=looop", "-c", "user.email=looop@localhost"]
        )
        new = merge_commit(ctx, s, *who)
    ok, _, why = _net(ctx, t, "push", "--porcelain", f"{new}:refs/heads/{s.into}", timeout=timeout)
    if not ok:
        raise LandError(f"the push of {s.into} to {t.origin} was refused: {why} — nothing landed")
    return Landed(t.wid, s.mode, t.branch, s.into, new, "", t.part, t.origin)._asdict()


def _at_urls(trees: list[Tree], urls: Any) -> list[Tree]:
    """Each clone's URL as its home's Job named it (`urls`: folder -> URL), when given."""
    if urls is None:
        return trees
    if not isinstance(urls, dict):
        raise LooopError("land: 'urls' must map each checkout's folder to its URL")
    out = []
    for t in trees:
        url = urls.get(t.part)
        if not isinstance(url, str):
            raise LooopError(f"land: no URL for checkout {t.part or 'repo'} of worker {t.wid}")
        out.append(t._replace(origin=check_url(url)))
    return out


def _land_pod(ctx: Ctx, wid: str, req: dict[str, Any]) -> dict[str, Any]:
    done: list[dict[str, Any]] = []
    try:
        mode, into, repo = land_words(req)
        trees = _at_urls(worker_trees(ctx, wid), req.get("urls"))
        ask = LandRequest("", Approved.from_json(req.get("at")), mode, into, repo)
        t = req.get("timeout")  # as the home's land.pr_timeout_s says (1 to 3600 s)
        ok = isinstance(t, int | float) and not isinstance(t, bool) and 1 <= t <= 3600
        timeout = float(t) if ok and isinstance(t, int | float) else NET_TIMEOUT_S
        steps = checked_plans(
            chosen_trees(trees, repo), lambda t: plan_step(ctx, t, ask, mode, timeout), False
        )
        for s in steps:
            try:
                done.append(land_step(ctx, s, timeout))
            except LooopError as e:
                if len(steps) == 1:
                    raise
                landed = ", ".join(str(d["name"]) for d in done) or "nothing"
                raise LandError(f"repo {s.tree.part}: {e} — landed before it: {landed}") from None
    except LooopError as e:
        return refusal(e) | {"landed": done}
    return {"landed": done}


def _unpush(ctx: Ctx, wid: str, req: dict[str, Any]) -> dict[str, Any]:
    """A branch the pr landing pushed, taken back from origin."""
    branch, repo = req.get("branch"), req.get("repo") or ""
    if not isinstance(branch, str) or not isinstance(repo, str):
        raise LooopError("unpush: 'branch' and 'repo' must be names")
    trees = _at_urls(worker_trees(ctx, wid), req.get("urls"))
    tree = next((t for t in trees if t.part == repo), None)
    if tree is None:
        raise LooopError(f"unpush: worker {wid} has no repository {repo!r}")
    ok, _, why = _net(ctx, tree, "push", "--porcelain", f":refs/heads/{check_branch(branch)}")
    return {"ok": ok, "why": "" if ok else why}
