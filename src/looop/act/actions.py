"""Typed decisions: the one move a runner may ask for, parsed and validated before anything runs.

What an action is, is act/decision.py; each action's declaration is in act/moves/, the table
of them all act/actiontable.py, the parsing act/parse.py. This is the one place other rooms
import the actions from; it loads every move. A single move made by hand (cli/steermove.py:
`looop kill`, `worker start`) takes the parser alone, which loads only its own move's module.
"""

from __future__ import annotations

from looop.act.actiontable import ACTION_TAGS, all_actions, taught
from looop.act.decision import (
    MAX_BUDGET_USD,
    Action,
    Decision,
    DecisionError,
    Mover,
    check_id,
    worker_target,
)
from looop.act.moves.files import ArchiveGoal, RemoveSensor, WriteGoal, WritePlaybook, WriteSensor
from looop.act.moves.kill import KillWorker
from looop.act.moves.notes import (
    EVERY_S_BOUNDS,
    IN_S_BOUNDS,
    DropSchedule,
    Noop,
    SendNotification,
    WriteSchedule,
)
from looop.act.moves.runshell import RunShell
from looop.act.moves.sessions import MAX_KEYS, RestartSession, SendKey, SteerSession
from looop.act.moves.workers import StartWorker
from looop.act.parse import MAX_DEPTH, decision_from_obj, parse_decision

# Every action, checked whole (act/actiontable.py): whatever imports this façade loads every
# move, so a declaration the table leaves out is refused here, at import.
ACTIONS: tuple[type[Action], ...] = all_actions()

__all__ = [
    "ACTIONS",
    "ACTION_TAGS",
    "EVERY_S_BOUNDS",
    "IN_S_BOUNDS",
    "MAX_BUDGET_USD",
    "MAX_DEPTH",
    "MAX_KEYS",
    "Action",
    "ArchiveGoal",
    "Decision",
    "DecisionError",
    "DropSchedule",
    "KillWorker",
    "Mover",
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
    "parse_decision",
    "taught",
    "worker_target",
]
