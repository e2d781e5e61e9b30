"""Review and land a worker on an SSH host from its home. Its checkouts are on the host, so
the change is read there and landed there (the host's satellite: act/landthere.py, the same
review and landing code) — merged into its base in the host's repository, or pushed from it
with the request opened there; everything else is the home's as for a worker at home: the
comment rounds (sent by `looop tell`, or a resume, as any round), the decider's proposal, its
outcome, the WAL record and the journal line naming who approved it, from where, on which
host and the commit it made."""

from __future__ import annotations

from typing import Any

from looop.act.landconfig import land_config
from looop.act.landing import Approved, Landed, LandError, journal_landed, settle
from looop.act.landlocal import Away, refused_as
from looop.act.wal import intent
from looop.core.context import Ctx
from looop.home.config import Knobs
from looop.remote.hosts import HostError
from looop.remote.ssh.backend import SshBackend
from looop.remote.ssh.farreview import call as _call
from looop.remote.ssh.farreview import far_review
from looop.remote.ssh.link import OP_TIMEOUT_S, Unreachable
from looop.workers.review import Review
from looop.workers.reviewrounds import Round
from looop.workers.reviewsend import send


class OnHost(Away):
    """Worker `wid`'s change on SSH host `host`, where its checkouts are."""

    def __init__(self, ctx: Ctx, wid: str, host: str) -> None:
        super().__init__(ctx, wid)
        self.host, self.where = host, f"host {host}"

    def review(self) -> Review:
        return far_review(self.ctx, self.wid, self.host)

    def ask(self, op: str, req: dict[str, Any], timeout: float) -> dict[str, Any]:
        return _call(self.ctx, self.host, op, {"id": self.wid, **req}, timeout)

    def send(self, knobs: Knobs) -> Round:
        """The draft round sent as any round is (workers/reviewsend.py), once its host said
        whether the worker still runs: one that ended there is resumed with it, not told a
        message no run of it would read (the home learns it is over only when it asks)."""
        ctx, wid = self.ctx, self.wid
        SshBackend(ctx, self.host).reach(wid)  # an ended worker's record says so from now on

        def resume_there(text: str) -> bool:
            return self.ask("resume", {"why": text}, OP_TIMEOUT_S).get("prompt") is True

        return send(ctx, knobs, wid, resume_there)

    def land(
        self,
        knobs: Knobs,
        mode: str | None,
        into: str | None,
        actor: str,
        repo: str | None = None,
        *,
        at: Approved,
    ) -> Landed:
        """Land it on its host as this home's config says; journaled here (and there)."""
        ctx, wid, host = self.ctx, self.wid, self.host
        raw = ctx.config().raw
        cfg = land_config(raw)  # a bad value is said before the host is asked
        how = mode or cfg.merge
        req = {"id": wid, "mode": how, "into": into, "repo": repo, "land": raw.get("land", {})}
        req |= {"actor": actor, "at": at.to_json()}
        timeout = 2 * cfg.pr_timeout_s + OP_TIMEOUT_S  # a push and a command, each bounded
        summary = f"land worker {wid} on host {host} ({how})"
        with intent(ctx, actor, "land", f"{wid}@{host}:{repo or ''}", summary):
            try:
                got = _call(ctx, host, "land", req, timeout)
            except Unreachable as e:
                raise LandError(
                    f"{e} during the landing of worker {wid}: it may have landed there — "
                    f"`looop review {wid}` shows where its branch is"
                ) from None
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
    """A Landed from its asdict (a KeyError/TypeError/ValueError when it is not one)."""
    if not isinstance(obj, dict):
        raise TypeError("not an object")
    words = ("wid", "mode", "branch", "into", "commit", "url", "name", "repo")
    got = {k: obj[k] for k in words}
    if not all(isinstance(v, str) for v in got.values()) or got["mode"] not in (
        "ff",
        "merge",
        "pr",
    ):
        raise ValueError("a field of the wrong kind")
    more = obj.get("repos") or []
    if not isinstance(more, list | tuple):
        raise TypeError("repos")
    return Landed(**got, repos=tuple(landed_from_json(x) for x in more))
