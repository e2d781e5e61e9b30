"""A worker's change as a reviewer reads it: its commits, the diff against its base (files with
their stats and hunks), whether its verify passed, its own summary, and the comment rounds sent
back with what changed since the last. One function every face reads (`looop review`, the web's
/api/v1/workers/{id}/review); its JSON read back, and the review of a worker away."""

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple, TypeVar, cast, get_args, get_type_hints

from looop.core.context import Ctx
from looop.home import jsonio, store
from looop.home.errors import CorruptState, LooopError
from looop.home.where import REPORTS
from looop.sessions.state import SessionError, get_session
from looop.views import outcomes
from looop.workers import reviewgit, reviewrounds, treework
from looop.workers.errors import ChangeError, NoSuchWorker, Unreached
from looop.workers.ids import normalise_target
from looop.workers.reviewgit import Commit, Diff, FileChange
from looop.workers.reviewrounds import Proposal, Round, load_rounds, shown
from looop.workers.treerecord import Tree, WorktreeError, held_tip, load, load_all

MAX_SUMMARY = 64 * 1024  # bytes of a worker's report shown
T = TypeVar("T")


class Verify(NamedTuple):
    state: str  # "passed", "failed", "pending" (to run once the worker ends), "none"
    cmd: str = ""
    exit_code: int | None = None
    timed_out: bool = False
    output: str = ""


class RepoChange(NamedTuple):
    """The change in one repository of the worker (a worker of several has one each)."""

    name: str  # its checkout's folder in the worker's workspace ("": a worker of one repo)
    repo: str
    branch: str
    base: str
    tip: str
    commits: tuple[Commit, ...]
    files: tuple[FileChange, ...]
    uncommitted: bool | None
    moved: bool


class Review(NamedTuple):
    wid: str
    repo: str
    branch: str
    base: str
    tip: str
    commits: tuple[Commit, ...]
    files: tuple[FileChange, ...]
    verify: Verify
    summary: str  # the worker's own report ("": it wrote none)
    summary_from: str  # where it was read
    uncommitted: bool | None  # its worktree holds work no commit has (None: unknown / gone)
    moved: bool  # the branch is not where the worker's checkout left it
    rounds: tuple[Round, ...]
    since_last: tuple[Commit, ...]  # commits after the last round sent
    # every repository's change in the worker's order; the fields above are the first's
    repos: tuple[RepoChange, ...] = ()
    proposal: Proposal | None = None  # the decider's landing proposal waiting on the human
    landed: str = ""  # "landed into main at …" once its base holds it: nothing left to land

    def tips(self) -> dict[str, str]:
        """Each repository's tip as shown, by its folder's name ("": a worker of one)."""
        return {each.name: each.tip for each in self.repos} or {"": self.tip}

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = jsonio.plain(self)
        out["v"] = 1
        every = [self.files, *(each.files for each in self.repos)]
        for got, files in zip([out, *out["repos"]], every, strict=True):
            for f, change in zip(got["files"], files, strict=True):
                f["binary"] = change.binary
        return out


def worker_tree(ctx: Ctx, wid: str) -> Tree:
    tree = load(ctx, wid)
    if tree is None and (far := _far_host(ctx, wid)):
        raise WorktreeError(
            f"worker {wid} works on host {far}: its checkouts are there, not here — `looop "
            f"review {wid}` and `looop land {wid}` reach them there (an SSH host's), `looop "
            f"worker diff {wid}` shows its change"
        )
    if tree is None and not (ctx.paths.sessions / wid).is_dir():
        raise NoSuchWorker(f"no worker {wid} — `looop ls` lists them")
    if tree is None:
        raise WorktreeError(
            f"worker {wid} has no worktree — only a worker started with --repo has a change "
            "to review or land"
        )
    return tree


def _far_host(ctx: Ctx, wid: str) -> str:
    """The host a worker away from home runs on, as the home's record says ("": none)."""
    try:
        rec = store.read_json_object(ctx.paths.host_record(wid))
    except (CorruptState, OSError):
        return ""
    host = rec.get("host") if rec else None
    return host if isinstance(host, str) and host.isprintable() else ""


def verify_of(ctx: Ctx, wid: str) -> Verify:
    """What verify/<id>.json says (the beat writes it once the worker ended)."""
    try:
        rec = store.read_json_object(ctx.paths.verify / f"{wid}.json")
    except (CorruptState, OSError):
        rec = None
    if rec is None:
        pending = (ctx.paths.verify / f"{wid}.cmd").exists()
        return Verify("pending" if pending else "none")
    code = rec.get("exit_code")
    return Verify(
        "passed" if rec.get("pass") is True else "failed",
        str(rec.get("cmd", "")),
        code if isinstance(code, int) else None,
        rec.get("timed_out") is True,
        str(rec.get("output", ""))[-4000:],
    )


def summary_of(ctx: Ctx, wid: str) -> tuple[str, str]:
    """The worker's own report (reports/<id>.md, or its box's room), bounded, never through a
    symlink the worker left; ("", "") when it wrote none."""
    for folder in (str(ctx.paths.rooms / wid / REPORTS), str(ctx.paths.reports)):
        path = os.path.join(folder, f"{wid}.md")
        try:
            raw = store.read_regular(path, MAX_SUMMARY, follow=False)
        except OSError:
            continue
        text = raw[:MAX_SUMMARY].decode("utf-8", "replace")
        return text + ("\n…(cut)" if len(raw) > MAX_SUMMARY else ""), path
    return "", ""


def branch_moved(tree: Tree, tip: str) -> bool:
    """The branch stands where no checkout of the worker left it (someone else moved it)."""
    gone = tree.removed or not os.path.isdir(tree.path)
    left = tree.tip if gone else held_tip(tree)  # where its own checkout left it
    return bool(left) and not tree.clone and left != tip


def worker_trees(ctx: Ctx, wid: str) -> list[Tree]:
    """Every checkout of the worker (one per repository), its first repo's first."""
    worker_tree(ctx, wid)  # the one line when it has none
    return load_all(ctx, wid)


def repo_change(ctx: Ctx, tree: Tree, diffs: list[Diff] | None = None) -> RepoChange:
    """One repository's part of the change, read once (`diffs`: see `review`). Whether its
    worktree holds uncommitted work is asked beside the rest: git in two places at once."""
    live = not tree.removed and os.path.isdir(tree.path)
    with beside(treework.is_dirty if live else None, ctx.env, tree) as dirty:
        tip = reviewgit.branch_tip(ctx, tree)
        diff = Diff(ctx, tree, tree.base, tip)
        if diffs is not None:  # its files' hunks read as they are shown
            diffs.append(diff)
        return RepoChange(
            name=tree.part,
            repo=tree.repo,
            branch=tree.branch,
            base=tree.base,
            tip=tip,
            commits=tuple(reviewgit.commits(ctx, tree, tree.base, tip)),
            files=tuple(diff.stats if diffs is not None else diff.files()),
            uncommitted=dirty(),
            moved=branch_moved(tree, tip),
        )


@contextmanager
def beside(fn: Callable[..., T] | None, *args: Any) -> Iterator[Callable[[], T | None]]:
    """`fn(*args)` on a thread of its own while the block runs; the call yielded waits for it
    and gives its answer, or raises what it raised (None: no `fn`). A block left early waits
    for it too: no git it runs outlives the caller."""
    if fn is None:
        yield lambda: None
        return
    got: list[tuple[Any, BaseException | None]] = []

    def run() -> None:
        try:
            got.append((fn(*args), None))
        except BaseException as e:  # raised again in the caller's thread
            got.append((None, e))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def answer() -> T | None:
        thread.join()
        value, err = got[0]
        if err is not None:
            raise err
        return cast("T", value)

    try:
        yield answer
    finally:
        thread.join()


def first_of(c: RepoChange) -> dict[str, Any]:
    """The fields of a Review that are its first repository's."""
    keys = ("repo", "branch", "base", "tip", "commits", "files", "uncommitted", "moved")
    return {k: getattr(c, k) for k in keys}


def review(ctx: Ctx, worker_id: str, diffs: list[Diff] | None = None) -> Review:
    """Everything `looop review ID` shows, read once; one line when it cannot be read.
    `diffs`: given, each repository's files are their stats alone, and its diff, open, is
    added there to read their hunks from as git writes them (the caller closes each)."""
    wid = normalise_target(worker_id)
    trees = worker_trees(ctx, wid)
    repos = tuple(repo_change(ctx, t, diffs) for t in trees)
    tree, first = trees[0], repos[0]
    tip = first.tip
    rounds = load_rounds(ctx, wid)
    since: list[Commit] = []
    sent = [r for r in rounds if r.sent]
    if sent and sent[-1].tip != tip:
        try:
            since = reviewgit.commits(ctx, tree, sent[-1].tip, tip)
        except LooopError:
            since = []  # the tip it was sent on is gone (rewritten): the commits say it all
    summary, source = summary_of(ctx, wid)
    return Review(
        wid=wid,
        **first_of(first),
        verify=verify_of(ctx, wid),
        summary=summary,
        summary_from=source,
        rounds=tuple(shown(ctx, r) for r in rounds),
        since_last=tuple(since),
        repos=repos,
        proposal=reviewrounds.pending(ctx, wid),
        landed=landed_of(ctx, wid),
    )


def landed_of(ctx: Ctx, wid: str) -> str:
    """What its outcome record says of this generation's landing ("": none, or a pull
    request still open)."""
    got = (outcomes.read_record(str(ctx.paths.data), wid) or {}).get("landed")
    try:
        gen: str | None = get_session(ctx.paths.data, wid).started_at
    except SessionError:
        gen = None
    if not isinstance(got, dict) or got.get("gen") != gen or outcomes.how_landed(got) == "pr":
        return ""
    return f"landed into {got.get('into')} at {str(got.get('commit'))[:12]}"


# -- a review read back from its JSON (`Review.to_json`): what a host's satellite answers for a
# worker whose checkouts are there. Read fail-closed (a field of the wrong kind is one line,
# never a guess) and only the change's own parts: the rounds, the proposal and the verify are
# the home's.


class BadReview(LooopError):
    pass


_HINTS: dict[type, dict[str, Any]] = {}  # each dataclass's field types, read once


def _read(cls: type[T], obj: Any) -> T:
    """One of the review's dataclasses from its JSON: text, whole numbers and lists checked
    (BadReview, one line, never a guess), a flag read as true only when it is, an optional
    number or flag left out when it is of another kind."""
    if not isinstance(obj, dict):
        raise BadReview(f"the review's {cls.__name__} is not an object")
    hints = _HINTS.get(cls) or _HINTS.setdefault(cls, get_type_hints(cls))
    got: dict[str, Any] = {}
    for key, kind in hints.items():
        v = obj.get(key)
        if kind in (str, int):
            v = kind() if v is None else v
            if type(v) is not kind:  # a flag is no number
                said = "text" if kind is str else "a whole number"
                raise BadReview(f"the review's {key!r} is not {said}")
        elif kind is bool:
            v = v is True
        elif kind in (bool | None, int | None):
            v = v if type(v) is get_args(kind)[0] else None
        else:  # tuple[ITEM, ...]: a tuple is a review's to_json() read in this process
            item = get_args(kind)[0]
            if not isinstance(v or [], list | tuple):
                raise BadReview(f"the review's {key!r} is not a list")
            if item is str and not all(isinstance(x, str) for x in v or []):
                raise BadReview(f"the review's {key!r} is not a list of text")
            v = tuple(x if item is str else _read(item, x) for x in v or [])
        got[key] = v
    return cls(**got)


def commits_of(raw: list[dict[str, Any]]) -> tuple[Commit, ...]:
    return tuple(_read(Commit, c) for c in raw)


def review_from_json(obj: Any) -> Review:
    """The change a review JSON holds (rounds, since_last and proposal left empty)."""
    first = _read(RepoChange, obj)
    repos = tuple(_read(RepoChange, r) for r in obj.get("repos") or []) or (first,)
    verify = obj.get("verify")
    said = {k: obj.get(k, "") for k in ("wid", "summary", "summary_from")}
    if not all(isinstance(v, str) for v in said.values()):
        raise BadReview("the review's id or summary is not text")
    return Review(
        **said,
        **first_of(first),
        verify=_read(Verify, verify) if isinstance(verify, dict) else Verify("none"),
        rounds=(),
        since_last=(),
        repos=repos,
    )


# -- a worker whose checkouts are away from home (an SSH host, a pod) has its change read
# there by the same code and answered as JSON; the home adds what is its own (the rounds, the
# verify it ran, the decider's proposal). remote/ssh/farreview.py and act/landfar.py use it.

# asked where the checkouts are: the request {"id", "since"} -> the answer {"review", "since"}
Ask = Callable[[dict[str, Any]], dict[str, Any]]


def away_review(ctx: Ctx, wid: str, ask: Ask, where: str) -> Review:
    """The worker's change as `ask` reads it where its checkouts are (`where` names that
    place in a refusal: "host h1"), with this home's rounds, verify and proposal."""
    rounds = load_rounds(ctx, wid)
    sent = [r for r in rounds if r.sent]
    got = ask({"id": wid, "since": sent[-1].tip if sent else ""})
    try:
        r = review_from_json(got.get("review"))
        since = got.get("since") or []
        after = commits_of(since if isinstance(since, list) else [])
    except (BadReview, AttributeError) as e:
        raise ChangeError(f"{where} answered a review this home cannot read: {e}") from None
    verify = verify_of(ctx, wid)
    return r._replace(
        wid=wid,
        verify=verify if verify.state != "none" else r.verify,
        rounds=tuple(rounds),
        since_last=after if sent and sent[-1].tip != r.tip else (),
        proposal=reviewrounds.pending(ctx, wid),
    )


# -- a worker's change read where its checkouts are: its diff (`looop worker diff`, bounded)
# and its review (`looop review --json`). This machine's engine (backend.LocalBackend) answers
# both from here, an SSH host's satellite or a pod the diff; a face asks its worker's Backend
# and never looks for where the worker runs.

MAX_DIFF = 512 << 10  # a worker's diff shown from its start up to this


def diff_of(ctx: Ctx, wid: str) -> dict[str, Any]:
    """{"id", "diff", "cut"}: its commits since its base, its edits and new files, the text up
    to MAX_DIFF (`cut`: there was more)."""
    try:
        text = treework.diff_out(treework.diff_runs(ctx, wid), MAX_DIFF).decode("utf-8", "replace")
    except LooopError as e:
        raise ChangeError(str(e)) from None
    return {"id": wid, "diff": text[:MAX_DIFF], "cut": len(text) > MAX_DIFF}


def review_of(ctx: Ctx, wid: str) -> Review:
    """review(), what refuses it said as a ChangeError (the Backend's `review`)."""
    try:
        return review(ctx, wid)
    except Unreached:  # no such worker, or its change unreadable: said by its kind
        raise
    except LooopError as e:
        raise ChangeError(str(e)) from None


def far_diff(got: dict[str, Any], wid: str, where: str) -> dict[str, Any]:
    """An answer to a diff from `where` ("host h1", a pod), checked: its text (bounded as
    here) and whether it was cut."""
    text = got.get("diff")
    if not isinstance(text, str):
        raise ChangeError(f"{where} answered worker {wid}'s diff without one: retry")
    return {
        "id": wid,
        "diff": text[:MAX_DIFF],
        "cut": got.get("cut") is True or len(text) > MAX_DIFF,
    }
