"""The moves that write the loop's own files: goals, PLAYBOOK.md and sensors (a sensor's
script passes the shell gate, and who wrote it is kept: core/provenance)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

from looop.act import goalarchive, protected, shellguard
from looop.act.decision import Action, DecisionError, Mover, Plain, check_id, opt_str, req_str
from looop.act.outcome import ExecError
from looop.act.playbook import write_playbook
from looop.act.shellgate import sandboxed, shell_guard
from looop.core import provenance
from looop.core.text import file_text
from looop.core.watchlines import declared, resolve
from looop.home import store
from looop.views import outcomes


@dataclass(frozen=True)
class WriteGoal(Plain):
    tag = "write_goal"
    kind = "goal"
    teach = r"""write_goal{id,body} - create or replace goals/<id>.md. A goal says what should be true; it is
never executed.
  {"action":"write_goal","id":"release-2-1","body":"goal: 2.1 is tagged\n\n- CI green"}"""  # noqa: E501

    id: str
    body: str

    def __post_init__(self) -> None:
        check_id("goal", self.id)
        # An empty goal would sit in the prompt saying nothing; archive_goal removes one.
        if not self.body.strip():
            raise DecisionError(
                "write_goal: field 'body' must be a non-empty string (archive_goal removes a goal)"
            )

    def summary(self) -> str:
        return f"write-goal {self.id}"

    def goal(self) -> str | None:
        return self.id

    def perform(self, by: Mover) -> str | None:
        body = self.body if self.body.endswith("\n") else self.body + "\n"
        store.atomic_write(by.ctx.paths.goal(self.id), body)
        return None


@dataclass(frozen=True)
class ArchiveGoal(Action):
    tag = "archive_goal"
    kind = "archive"
    teach = r"""archive_goal{id,reason} - looop moves goals/<id>.md to goals/archive/; reason says why: "done"
(met), "dropped" (no longer wanted) or "superseded" (another goal took its place).
  {"action":"archive_goal","id":"release-2-1","reason":"done"}"""  # noqa: E501

    id: str
    reason: str

    note: str = ""  # a free-form reason, which v1.0 ignored: journaled, filed as "unsaid"

    def __post_init__(self) -> None:
        check_id("goal", self.id)
        try:
            goalarchive.check_reason(self.reason, "archive_goal: field 'reason'")
        except ValueError as e:
            raise DecisionError(str(e)) from None

    @classmethod
    def parse(cls, obj: dict[str, Any]) -> Self:
        # v1.0's archive_goal{id} says no reason: it archived a goal whose work was done
        reason = opt_str(cls.tag, obj, "reason")
        if reason is None or reason in goalarchive.REASONS:
            return cls(id=req_str(cls.tag, obj, "id"), reason=reason or "done")
        note = " ".join(reason.split())[:200]
        return cls(id=req_str(cls.tag, obj, "id"), reason="unsaid", note=note)

    def summary(self) -> str:
        return f"archive-goal {self.id} ({self.note or self.reason})"

    def goal(self) -> str | None:
        return self.id

    def perform(self, by: Mover) -> str | None:
        """An already archived goal is a success that says so; a goal never seen is an error."""
        paths = by.ctx.paths
        src = paths.goal(self.id)
        dst = paths.goals_archive / f"{self.id}.md"
        try:
            # an id archived before keeps its earlier body: goals/archive/ID~2.md, ID~3.md…
            moved = store.move_aside(src, dst.parent, self.id, ".md") if src.is_file() else ""
        except FileNotFoundError:  # archived meanwhile (a human's `looop goal archive`)
            moved = ""
        if not moved:
            if dst.is_file():
                return f"{paths.rel(dst)} was already archived"
            raise ExecError(f"archive_goal: {paths.rel(src)} does not exist (nothing to archive)")
        who = "decider" if by.decided else by.actor
        ended = goalarchive.record(by.ctx, moved, self.id, self.reason, who, self.note)
        return None if ended is None else f"its worker {self.id} ended {outcomes.short(ended)}"


@dataclass(frozen=True)
class WriteSensor(Plain):
    tag = "write_sensor"
    kind = "sensor"
    teach = r"""write_sensor{name,script} - create or replace sensors/<name>.sh, a read-only check run every
beat.
  {"action":"write_sensor","name":"prs","script":"#!/bin/sh\ngh pr list --json number | jq -c '{signal:{open:length},detail:{}}'"}"""  # noqa: E501

    name: str
    script: str

    def __post_init__(self) -> None:
        check_id("sensor", self.name)
        # An empty script is a sensor that fails every beat; remove_sensor removes one.
        if not self.script.strip():
            raise DecisionError(
                "write_sensor: field 'script' must be a non-empty string "
                "(remove_sensor removes a sensor)"
            )

    def summary(self) -> str:
        return f"write-sensor {self.name}"

    def perform(self, by: Mover) -> str | None:
        # A sensor runs on every beat; a shell one passes the tripwire like run_shell. Who
        # wrote it is recorded (core/provenance): a decision's runs under shell_policy's sandbox.
        paths = by.ctx.paths
        path = paths.sensor(self.name)
        unread = self._unread(by) if by.decided else False
        if shellguard.foreign_interpreter(self.script) is None:
            shell_guard(by, self.script, "write_sensor")
        body = file_text(self.script)
        # first: the old file is no longer a human's (nor unread) while it is replaced
        provenance.forget(paths, provenance.SENSOR, self.name)
        if unread:  # before the file: it never exists unmarked
            provenance.mark_unread(paths, provenance.SENSOR, self.name, store.encode(body))
        store.atomic_write(path, body, mode=0o755)
        who = provenance.DECISION if by.decided else provenance.HUMAN
        provenance.write(paths, provenance.SENSOR, self.name, store.encode(body), who)
        return None

    def _unread(self, by: Mover) -> bool:
        """A decision may not replace a human's sensor nor watch outside what is looop's, and
        may write one the tripwire cannot read (python, node, …) only when it will run
        sandboxed. True: it is such a one."""
        paths = by.ctx.paths
        path = paths.sensor(self.name)
        rel = paths.rel(path)
        try:
            old: bytes | None = store.read_regular(path)
        except OSError:
            old = None
        if old is not None and provenance.by_human(paths, provenance.SENSOR, self.name, old):
            raise ExecError(
                f"write_sensor: {rel} was written by a human (`looop sensor write`) and a "
                "decision may not replace it — write a sensor of another name, or ask the human"
            )
        watched = [resolve(by.ctx, w) for w in declared(store.encode(file_text(self.script)))]
        far = protected.outside(by.ctx, watched)
        if far is not None:  # a decided watch wakes the pulse: on what is looop's to watch
            raise ExecError(
                f"write_sensor: a decision's sensor may not watch {far}, outside your home, the "
                "data dir and the workers' repos — watch a path within them, or ask the human"
            )
        why = shellguard.unreadable_script(file_text(self.script))  # as it lands on disk
        refused = f"write_sensor refused: the tripwire cannot read {rel}"
        return why is not None and sandboxed(
            by, refused, why, "write_sensor", " every beat", "to write it or "
        )


@dataclass(frozen=True)
class RemoveSensor(Plain):
    tag = "remove_sensor"
    kind = "remove-sensor"
    teach = r"""remove_sensor{name} - delete sensors/<name>.sh once it no longer tells you anything.
  {"action":"remove_sensor","name":"prs"}"""

    name: str

    def __post_init__(self) -> None:
        check_id("sensor", self.name)

    def summary(self) -> str:
        return f"remove-sensor {self.name}"

    def perform(self, by: Mover) -> str | None:
        """Moves are level-triggered: a sensor already gone is a success that says so."""
        paths = by.ctx.paths
        path = paths.sensor(self.name)
        gone = f"{paths.rel(path)} was already gone"
        if not path.exists() and not path.is_symlink():
            return gone
        if not path.is_file():
            raise ExecError(f"remove_sensor: {paths.rel(path)} is not a file; remove it by hand")
        try:
            path.unlink()
        except FileNotFoundError:
            return gone
        finally:
            provenance.forget(paths, provenance.SENSOR, self.name)
        return None


@dataclass(frozen=True)
class WritePlaybook(Plain):
    tag = "write_playbook"
    kind = "playbook"
    teach = r"""write_playbook{body} - replace PLAYBOOK.md (priorities, guardrails). Deliberate and rare; it
must keep the CONSTITUTION.
  {"action":"write_playbook","body":"# PLAYBOOK\n\n1. Releases before refactors.\n"}"""  # noqa: E501

    body: str

    def __post_init__(self) -> None:
        # An empty PLAYBOOK would silently erase the loop's instructions.
        if not self.body.strip():
            raise DecisionError("write_playbook: field 'body' must be a non-empty string")

    def summary(self) -> str:
        return "write-playbook"

    def perform(self, by: Mover) -> str | None:
        write_playbook(by.ctx, by.knobs, self.body)
        return None
