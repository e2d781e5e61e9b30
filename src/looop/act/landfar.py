"""Review and land a worker away from its home: on an SSH host (`OnHost`) or in a Kubernetes
pod (`InPod`). Its checkouts are there, so the change is read there and landed there or from
there; everything else is the home's as for a worker at home: the comment rounds (sent by
`looop tell`, or a resume, as any round), the decider's proposal, its outcome, the WAL record
and the journal line naming who approved it, from where (its host, or its pod's Job) and the
commit it made.

An SSH host's satellite lands it with the home's own code (act/landthere.py): merged into its
base in the host's repository, or pushed from it with the request opened there.

A pod has no user checkout to merge into, only its clone (`looop pod change`,
act/landthere.py):
- ff / merge: the base branch fetched from the clone's origin, merged into (a merge commit) or
  fast-forwarded to the worker's branch in the clone, and pushed back to origin with a plain
  push — a refused push (a hook, no rights, a base that moved meanwhile) lands nothing.
- pr: the worker's branch pushed from the pod (as `looop/<id>` when the worker worked on the
  base's own name), then the request opened HERE by land.pr_command, where the forge's CLI and
  its credentials are: the home has no checkout of the repository, so the command names it
  with {repo} (the clone's URL), e.g. `gh pr create --repo {repo} …`. A command that fails
  takes the pushed branch back (unless it was there before).
A pod whose Job ended has no checkouts any more: each step refuses in one line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from looop.act.landing import (
    MODES,
    LandConflict,
    Landed,
    LandError,
    LandRequest,
    NothingToLand,
    journal_landed,
    settle,
)
from looop.act.landlocal import Away
from looop.act.landpr import LandConfig, land_config, request_text, run_with_body, tell_others
from looop.act.wal import intent
from looop.core.context import Ctx
from looop.home.config import Knobs
from looop.home.errors import LooopError
from looop.remote.hosts import HostError
from looop.remote.kube.backend import HostedKube
from looop.remote.kube.podchange import (
    REVIEW_TIMEOUT_S,
    ask,
    ended,
    job_repos,
    pod_running,
)
from looop.remote.repospec import check_branch
from looop.remote.ssh.backend import SshBackend, far_call
from looop.remote.ssh.link import OP_TIMEOUT_S, Unreachable
from looop.workers.errors import Refused
from looop.workers.review import Review, commits_of, summary_of


def refused_as(got: dict[str, Any], where: str) -> None:
    """A host's or a pod's refusal (act/landthere.py `refusal`) raised here as its kind,
    `where` said first."""
    said = got.get("refused")
    if not isinstance(said, str):
        return
    if got.get("kind") == "conflict":
        raise LandConflict(where + said, str(got.get("comment", "")))
    raise (NothingToLand if got.get("kind") == "nothing" else LandError)(where + said)


def asked_land(c: Away, req: dict[str, Any], timeout: float, lost: type[Exception]) -> Any:
    """The landing asked where `c`'s checkouts are; `lost`: a failure that may come after it
    landed."""
    try:
        return c.ask("land", req, timeout)
    except Refused:
        raise
    except lost as e:
        raise LandError(
            f"{e} during the landing of worker {c.wid}: it may have landed — `looop "
            f"review {c.wid}` shows where its branch is"
        ) from None


class OnHost(Away):
    """Worker `wid`'s change on SSH host `host`, where its checkouts are."""

    def __init__(self, ctx: Ctx, wid: str, host: str) -> None:
        super().__init__(ctx, wid)
        self.host, self.where = host, f"host {host}"

    def review(self, diffs: object = None) -> Review:  # whole: `diffs` left empty
        return SshBackend(self.ctx, self.host).review(self.wid)

    def ask(self, op: str, req: dict[str, Any], timeout: float) -> dict[str, Any]:
        return far_call(self.ctx, self.host, op, {"id": self.wid, **req}, timeout)

    def resumes(self) -> Callable[[str], bool]:
        """Its host says whether the worker still runs: one that ended there is resumed with
        the round (`ended`), not told a message no run of it would read (the home learns it
        is over only when it asks); an ended worker's record says so from now on."""
        SshBackend(self.ctx, self.host).reach(self.wid)
        return self.ended

    def ended(self, text: str) -> bool:
        return self.ask("resume", {"why": text}, OP_TIMEOUT_S).get("prompt") is True

    def land(self, knobs: Knobs, ask: LandRequest) -> Landed:
        """Land it on its host as this home's config says; journaled here (and there)."""
        ctx, wid, host, actor, repo = self.ctx, self.wid, self.host, ask.actor, ask.repo
        raw = ctx.config().raw
        cfg = land_config(raw)  # a bad value is said before the host is asked
        how = ask.mode or cfg.merge
        req = {"mode": how, "into": ask.into, "repo": repo, "land": raw.get("land", {})}
        req |= {"actor": actor, "at": ask.at.to_json()}
        timeout = 2 * cfg.pr_timeout_s + OP_TIMEOUT_S  # a push and a command, each bounded
        summary = f"land worker {wid} on host {host} ({how})"
        with intent(ctx, actor, "land", f"{wid}@{host}:{repo or ''}", summary):
            got = asked_land(self, req, timeout, Unreachable)
        refused_as(got, f"on host {host}: ")
        try:
            done = landed_from_json(got.get("landed"))
        except (KeyError, TypeError, ValueError):
            raise HostError(
                f"host {host} landed worker {wid} but its answer cannot be read — `looop "
                f"review {wid}` shows where its branch is"
            ) from None
        for each in done.repos or (done,):
            journal_landed(ctx, knobs, each, actor, host)
        if repo is None:  # landed once every repository is
            settle(ctx, knobs, done, actor)
        return done


def landed_from_json(obj: Any) -> Landed:
    """A Landed from its JSON (a KeyError/TypeError/ValueError when it is not one)."""
    if not isinstance(obj, dict):
        raise TypeError("not an object")
    words = ("wid", "mode", "branch", "into", "commit", "url", "name", "repo")
    got = {k: obj[k] for k in words}
    if not all(isinstance(v, str) for v in got.values()) or got["mode"] not in MODES:
        raise ValueError("a field of the wrong kind")
    more = obj.get("repos") or []
    if not isinstance(more, list | tuple):
        raise TypeError("repos")
    return Landed(**got, repos=tuple(landed_from_json(x) for x in more))


class InPod(Away):
    """Worker `wid`'s change in its pod `b`, where its clones are."""

    def __init__(self, ctx: Ctx, wid: str, b: HostedKube) -> None:
        super().__init__(ctx, wid)
        self.b, self.where = b, f"worker {wid}'s pod"

    def review(self, diffs: object = None) -> Review:  # whole: `diffs` left empty
        return self.b.review(self.wid)

    def ask(self, op: str, req: dict[str, Any], timeout: float) -> dict[str, Any]:
        return ask(self.b, self.wid, op, req, timeout)

    def resumes(self) -> Callable[[str], bool]:
        """The round is told to the running worker (`looop told` in the pod reads it through
        its way home); a pod that ended is not resumed: its checkouts are gone."""
        pod_running(self.b, self.wid)
        return self.ended

    def ended(self, text: str) -> bool:
        raise Refused(ended(self.wid))

    def land(self, knobs: Knobs, ask: LandRequest) -> Landed:
        """Land it from its pod as this home's config says; journaled here with its Job."""
        ctx, wid, b, actor, repo = self.ctx, self.wid, self.b, ask.actor, ask.repo
        cfg = land_config(ctx.config().raw)  # a bad value is said before the pod is asked
        how = ask.mode or cfg.merge
        if how == "pr" and not any("{repo}" in w for w in cfg.pr_command):
            raise LandError(
                "land.pr_command runs at this home for a pod worker, which has no checkout of "
                "its repository here: name it with {repo} (the clone's URL), e.g. `gh pr create "
                "--repo {repo} --head {branch} --base {base} --title {title} --body-file {body}` "
                "— nothing landed"
            )
        pod_running(b, wid)
        place = f"in pod {b.job_ref(wid)} ({b.target.url()})"  # its Job, where it ran
        urls = job_repos(b, wid)  # the Job this home made names them, not the pod
        req = {"mode": how, "into": ask.into, "repo": repo, "urls": urls,
               "timeout": cfg.pr_timeout_s, "at": ask.at.to_json()}  # fmt: skip
        # a fetch, an ls-remote and a push per repository, each bounded there, and some slack
        limit = 3 * len(urls) * cfg.pr_timeout_s + 60
        with intent(ctx, actor, "land", f"{wid}@pod:{repo or ''}", f"land worker {wid} {place}"):
            got = asked_land(self, req, limit, LooopError)
            raw = [x for x in got.get("landed") or [] if isinstance(x, dict)]
            done = read_landed(wid, raw, urls)
            failed = ""
            if how == "pr" and "refused" not in got:
                done, failed = _open_requests(ctx, cfg, b, wid, raw, done)
        for each in done:  # what landed is journaled, whatever failed after it
            journal_landed(ctx, knobs, each, actor, where=place)
        if failed:
            raise LandError(failed)
        refused_as(got, "")
        if not got.get("landed"):
            raise LandError(f"the pod answered a landing with nothing landed ({place})")
        whole = done[0]._replace(repos=tuple(done)) if len(done) > 1 else done[0]
        if repo is None:  # landed once every repository is
            settle(ctx, knobs, whole, actor)
        return whole


def read_landed(wid: str, raw: list[dict[str, Any]], urls: dict[str, str]) -> list[Landed]:
    """What the pod says it landed, each named by its Job's URL; a checkout the Job never
    cloned, or a branch that is no branch name, is an answer this home cannot read."""
    try:
        done = [landed_from_json(x) for x in raw]
        for d in done:
            if d.name not in urls or check_branch(d.branch) != d.branch:
                raise ValueError(d.name)
            check_branch(d.into)
        return [d._replace(repo=urls[d.name]) for d in done]
    except (KeyError, TypeError, LooopError, ValueError):
        raise LandError(
            f"worker {wid}'s pod landed its change but its answer cannot be read — `looop "
            f"review {wid}` shows where its branch is"
        ) from None


def _open_requests(
    ctx: Ctx,
    cfg: LandConfig,
    b: HostedKube,
    wid: str,
    raw: list[dict[str, Any]],
    pushed: list[Landed],
) -> tuple[list[Landed], str]:
    """Each pushed branch's request opened here, in order: those opened, and ("": none) the
    one line of the first that failed — its branch and every one after it taken back."""
    out: list[Landed] = []
    for n, (each, got) in enumerate(zip(pushed, raw, strict=True)):
        try:
            title, text = _request_text(ctx, each, got, [*out, *pushed[n:]])
            fill = {"branch": each.branch, "base": each.into, "title": title,
                    "remote": cfg.remote, "repo": each.repo, "url": ""}  # fmt: skip
            body = (text, each.wid, each.name)
            url = run_with_body(ctx, cfg, cfg.pr_command, fill, body, str(ctx.paths.data))
        except LooopError as e:
            backs = [
                _take_back(b, wid, d, g.get("existed") is True)
                for d, g in zip(pushed[n:], raw[n:], strict=True)
            ]
            opened = ", ".join(d.url for d in out) or "none"
            return out, f"{e}; {'; '.join(backs)} — requests opened before it: {opened}"
        out.append(each._replace(url=url))
    for d, got in list(zip(out, raw, strict=True))[:-1] if len(out) > 1 else []:
        # each told the addresses of all, as a worker's at home is (land.pr_edit_command)
        fill = {"branch": d.branch, "base": d.into, "title": "", "remote": cfg.remote,
                "repo": d.repo, "url": d.url}  # fmt: skip
        body = (_request_text(ctx, d, got, out)[1], d.wid, d.name)
        tell_others(ctx, cfg, fill, body, str(ctx.paths.data))
    return out, ""


def _request_text(ctx: Ctx, d: Landed, got: dict[str, Any], all_: list[Landed]) -> tuple[str, str]:
    """A request's title and body as its pod answered (the commits, the worker's report,
    else read here), each other repository named with its request's address once it has one."""
    raw, said = got.get("commits"), got.get("summary")
    links = [f"One change across {len(all_)} repositories:"] if len(all_) > 1 else []
    links += [
        f"- `{o.name}` ({o.repo}), branch `{o.branch}`" + (f": {o.url}" if o.url else "")
        for o in all_
        if links
    ]
    summary = said if isinstance(said, str) and said else summary_of(ctx, d.wid)[0]
    commits = commits_of(raw if isinstance(raw, list) else [])
    return request_text(d.wid, d.branch, commits, "\n".join(links), summary, ", from its pod")


def _take_back(b: HostedKube, wid: str, d: Landed, existed: bool) -> str:
    if existed:
        return f"{d.branch} stays pushed to {d.repo} as it was before"
    try:
        got = ask(b, wid, "unpush", {"branch": d.branch, "repo": d.name}, REVIEW_TIMEOUT_S)
    except LooopError:
        got = {}
    if got.get("ok") is True:
        return "the pushed branch was taken back"
    return f"{d.branch} stays on {d.repo}: delete it"
