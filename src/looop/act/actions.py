"""Typed decisions: the one move a runner may ask for, parsed and validated before anything runs.

The action dataclasses and their names live in decision.py, the parsing in parse.py; this is
the one place other rooms import them from.
"""

from __future__ import annotations

from looop.act.decision import (
    ACTION_TAGS,
    EVERY_S_BOUNDS,
    IN_S_BOUNDS,
    MAX_KEYS,
    Action,
    ArchiveGoal,
    Decision,
    DecisionError,
    DropSchedule,
    KillWorker,
    Noop,
    RemoveSensor,
    RestartSession,
    RunShell,
    SendKey,
    SendNotification,
    StartWorker,
    SteerSession,
    WriteGoal,
    WritePlaybook,
    WriteSchedule,
    WriteSensor,
    check_id,
    goal_of,
    kind_of,
    summary_of,
    tag_of,
    worker_target,
)
from looop.act.parse import (
    MAX_DEPTH,
    decision_from_obj,
    parse_decision,
)

__all__ = [
    "ACTION_TAGS",
    "EVERY_S_BOUNDS",
    "IN_S_BOUNDS",
    "MAX_DEPTH",
    "MAX_KEYS",
    "Action",
    "ArchiveGoal",
    "Decision",
    "DecisionError",
    "DropSchedule",
    "KillWorker",
    "Noop",
    "RemoveSensor",
    "RestartSession",
    "RunShell",
    "SendKey",
    "SendNotification",
    "StartWorker",
    "SteerSession",
    "WriteGoal",
    "WritePlaybook",
    "WriteSchedule",
    "WriteSensor",
    "check_id",
    "decision_from_obj",
    "goal_of",
    "kind_of",
    "parse_decision",
    "summary_of",
    "tag_of",
    "worker_target",
]
