"""The moves that only say something: noop, a notification to the human, the schedules that
wake the loop later, and a landing proposed to the human (an ask carrying the change)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

from looop.act.decision import (
    Action,
    DecisionError,
    Mover,
    Plain,
    Reasoned,
    check_id,
    not_int,
    opt_int,
    opt_str,
    req_str,
    said,
    strip_worker_prefix,
)
from looop.act.moves import far
from looop.act.outcome import ExecError
from looop.act.wal import intent
from looop.core.context import Ctx
from looop.core.text import one_line
from looop.home import jsonio, store
from looop.home.errors import LooopError
from looop.home.hashing import digest
from looop.human import mailbox, schedules
from looop.human.notify import notify
from looop.workers import reviewrounds

if TYPE_CHECKING:  # a hint only: a noop loads none of the review's readers
    from looop.workers.review import Review


@dataclass(frozen=True)
class Noop(Plain):
    tag = "noop"
    kind = "noop"
    teach = r"""noop{reason} - nothing needs a move now.
  {"action":"noop","reason":"PR #42 is still in review"}"""

    reason: str = ""

    def summary(self) -> str:
        return said("noop", self.reason)

    def perform(self, by: Mover) -> str | None:
        return None


@dataclass(frozen=True)
class SendNotification(Plain):
    tag = "send_notification"
    kind = "notify"
    teach = r"""send_notification{message,id?} - tell the human something needs them (you are blocked on
them, or a worker waits for them). Once per matter; there is no reply channel.
  {"action":"send_notification","message":"release-2-1 waits for your go","id":"release-2-1"}"""  # noqa: E501

    message: str
    id: str = ""

    def summary(self) -> str:
        return f"notify · {one_line(self.message)}"

    def perform(self, by: Mover) -> str | None:
        message = self.message.strip()
        if not message:
            raise ExecError("send_notification: empty message; say what the human should know")
        fingerprint = digest(store.encode(f"send_notification\n{self.message}\n{self.id}"))
        with intent(by.ctx, by.actor, "notify", fingerprint, self.summary()):
            notify(by.ctx, message, self.id, "notification", by.cfg)
        return None


# A one-shot from a second, a period from a minute; past ten years either saturates there
# (human/schedules.FAR_S), as v1.0's does, rather than being refused.
IN_S_BOUNDS = (1, 10**18 - 1)
EVERY_S_BOUNDS = (60, 10**18 - 1)


@dataclass(frozen=True)
class WriteSchedule(Action):
    tag = "write_schedule"
    kind = "schedule"
    teach = r"""write_schedule{name, in_s|every_s|cron, tz?, note} - wake the loop later: in_s once, every_s
(>= 60) or a cron line (with optional tz) repeatedly. A due schedule shows in sys-schedules.
  {"action":"write_schedule","name":"digest","cron":"0 9 * * MON","tz":"Europe/Berlin","note":"write the weekly digest"}"""  # noqa: E501

    name: str
    in_s: int | None = None
    every_s: int | None = None
    cron: str | None = None
    tz: str | None = None
    note: str = ""

    def __post_init__(self) -> None:
        check_id("schedule", self.name)
        given = [f for f in ("in_s", "every_s", "cron") if getattr(self, f) is not None]
        if len(given) != 1:
            raise DecisionError(
                "write_schedule: give exactly one of 'in_s', 'every_s' or 'cron' "
                f"(got {', '.join(given) or 'none'})"
            )
        for name, (low, high) in (("in_s", IN_S_BOUNDS), ("every_s", EVERY_S_BOUNDS)):
            v = getattr(self, name)
            if v is not None and (not_int(v) or not low <= v <= high):
                raise DecisionError(
                    f"write_schedule: field '{name}' must be an integer from {low} to {high}"
                )
        if self.cron is not None and not self.cron.strip():
            raise DecisionError("write_schedule: field 'cron' must be a non-empty string")
        for name, text, most in (("cron", self.cron, 200), ("tz", self.tz, 64)):
            if text is not None and len(text) > most:
                raise DecisionError(f"write_schedule: field '{name}' is over {most} characters")

    @classmethod
    def parse(cls, obj: dict[str, Any]) -> Self:
        tag = cls.tag
        return cls(
            name=req_str(tag, obj, "name"),
            in_s=opt_int(tag, obj, "in_s", IN_S_BOUNDS),
            every_s=opt_int(tag, obj, "every_s", EVERY_S_BOUNDS),
            cron=opt_str(tag, obj, "cron"),
            tz=opt_str(tag, obj, "tz"),
            note=opt_str(tag, obj, "note") or "",
        )

    def summary(self) -> str:
        if self.in_s is not None:
            when = f"in {self.in_s}s"
        elif self.every_s is not None:
            when = f"every {self.every_s}s"
        else:
            when = f"cron '{one_line(self.cron or '')}'" + (f" {self.tz}" if self.tz else "")
        return f"write-schedule {self.name} · {when}"

    def perform(self, by: Mover) -> str | None:
        try:
            rec = schedules.build(
                by.ctx.clock,
                in_s=self.in_s,
                every_s=self.every_s,
                cron=self.cron,
                tz=self.tz,
                note=self.note,
            )
        except schedules.ScheduleError as e:
            raise ExecError(f"write_schedule '{self.name}': {e}") from e
        schedules.write(by.ctx.paths.schedules, self.name, rec)
        return None


@dataclass(frozen=True)
class DropSchedule(Plain):
    tag = "drop_schedule"
    kind = "drop-schedule"
    teach = r"""drop_schedule{name} - remove a schedule, e.g. once its one-shot wake was handled.
  {"action":"drop_schedule","name":"digest"}"""

    name: str

    def __post_init__(self) -> None:
        check_id("schedule", self.name)

    def summary(self) -> str:
        return f"drop-schedule {self.name}"

    def perform(self, by: Mover) -> str | None:
        schedules.drop(by.ctx.paths.schedules, self.name)  # idempotent, as the reference
        return None


@dataclass(frozen=True)
class ProposeLand(Reasoned):
    tag = "propose_land"
    kind = "propose-land"
    teach = r"""propose_land{id,reason} - ask the human to land a finished repo worker's change (its branch
into its base): they land or decline it, never you.
  {"action":"propose_land","id":"fix-login","reason":"done; verify passed"}"""  # noqa: E501

    head = "propose-land"

    def perform(self, by: Mover) -> str | None:
        """Level-triggered: a proposal of this change that waits, or was answered, is found,
        not raised twice."""
        try:
            wid = strip_worker_prefix(self.id)
            # read by its Backend where its checkouts are: here, on an SSH host, in a pod
            r = far.backend_for(by.ctx, wid).review(wid)
            return propose(by.ctx, wid, self.reason.strip(), r)
        except LooopError as e:
            raise ExecError(f"propose_land: {e}") from e


# -- the decider's landing proposal raised (propose_land): an ask carrying the worker's change
# for a human to approve by landing it or to decline (workers/reviewrounds.py keeps which ask
# it is and answers it).


def _carried(r: Review, reason: str) -> tuple[str, dict[str, Any]]:
    """The ask's words and the change it carries."""
    files = [f for each in r.repos for f in each.files] or list(r.files)
    commits = sum(len(each.commits) for each in r.repos) or len(r.commits)
    added = sum(f.added for f in files if not f.binary)
    removed = sum(f.removed for f in files)
    stat = f"{commits} commit(s), {len(files)} file(s) +{added} -{removed}"
    where = f"{r.branch} ({r.base[:12]}..{r.tip[:12]})"
    if len(r.repos) > 1:
        where = f"{r.branch} in {', '.join(each.name for each in r.repos)}"
    prompt = (
        f"Land worker {r.wid}'s change? {one_line(reason) or 'the decider proposes it'} — "
        f"{where}: {stat}; verify {r.verify.state}. Review it (`looop review {r.wid}`); "
        f"approve by landing it (`looop land {r.wid}`, or Land in its review); decline by "
        f"answering {reviewrounds.DECLINE}."
    )
    carried = {
        "branch": r.branch, "base": r.base, "tip": r.tip, "stat": stat,
        "verify": r.verify.state, "reason": reason, "repos": [e.name for e in r.repos],
    }  # fmt: skip
    return prompt, carried


def propose(ctx: Ctx, wid: str, reason: str, r: Review) -> str | None:
    """Raise the ask; what was found instead (journaled) when one for this change already
    waits or was answered. One line (LooopError) when there is nothing to propose. `r`: the
    change as read where its checkouts are."""
    if not any(each.commits for each in r.repos) and not r.commits:
        raise LooopError(f"worker {wid}'s branch has no commits past its base: nothing to land")
    tip = ",".join(each.tip for each in r.repos) or r.tip
    if (was := reviewrounds.read(ctx, wid)) is not None:
        if (said := reviewrounds.answer_of(ctx, was.ask)) is None:
            return f"its landing is already proposed (ask {was.ask}), waiting on the human"
        if was.tip == tip:  # the human answered this very change: no asking twice
            return f"the human answered its landing at this tip already (ask {was.ask}: {said})"
    prompt, carried = _carried(r, reason)
    rec = mailbox.new_ask(
        ctx.paths.asks, ctx.paths.answers, wid, prompt, None, [reviewrounds.DECLINE],
        ctx.clock.now(), land=carried,
    )  # fmt: skip
    keep = {"v": 1, "ask": rec["id"], "reason": reason, "ts": rec["ts"], "tip": tip}
    path = reviewrounds.proposal_file(ctx, wid)
    path.parent.mkdir(parents=True, exist_ok=True)
    store.atomic_write(path, jsonio.dumps(keep, indent=2, sort_keys=True) + "\n")
    said = f"worker {wid}'s change waits on your review to land: {one_line(reason)}"
    decline = f"looop answer {rec['id']} {reviewrounds.DECLINE}"
    notify(ctx, f"{said}\nland: looop land {wid} · decline: {decline}", rec["id"], "ask")
    return None
