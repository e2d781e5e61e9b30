"""The table of every action, in the order the prompt teaches them: what a decision may name,
how its tag finds its class, and the prompt's reference of them all. Each row is one whole
declaration (act/decision.py); a class declared in act/moves/ and left out of this table is
refused at import, so no action is taught, parsed or performed by halves."""

from __future__ import annotations

from looop.act import moves
from looop.act.decision import Action
from looop.act.moves.files import ArchiveGoal, RemoveSensor, WriteGoal, WritePlaybook, WriteSensor
from looop.act.moves.notes import DropSchedule, Noop, SendNotification, WriteSchedule
from looop.act.moves.runshell import RunShell
from looop.act.moves.sessions import RestartSession, SendKey, SteerSession
from looop.act.moves.workers import KillWorker, StartWorker

ACTIONS: tuple[type[Action], ...] = (
    Noop,
    RunShell,
    WriteGoal,
    ArchiveGoal,
    WriteSensor,
    RemoveSensor,
    WritePlaybook,
    StartWorker,
    KillWorker,
    SteerSession,
    SendKey,
    RestartSession,
    SendNotification,
    WriteSchedule,
    DropSchedule,
)


def declared(package: str = moves.__name__) -> set[type[Action]]:
    """Every action class declared in `package`'s modules (however deep it subclasses)."""
    found: set[type[Action]] = set()
    todo = list(Action.__subclasses__())
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if cls.__module__.startswith(package + "."):
            found.add(cls)
    return found


def check(actions: tuple[type[Action], ...], among: set[type[Action]]) -> dict[str, type[Action]]:
    """The table by tag; TypeError when a class declared is missing from it, or two rows
    share a tag or a kind."""
    left_out = sorted(c.__name__ for c in among - set(actions))
    if left_out:
        raise TypeError(
            f"action {', '.join(left_out)} is declared but not in act/actiontable.py's ACTIONS: "
            "add its row, or it could be neither taught, parsed nor performed"
        )
    by_tag = {a.tag: a for a in actions}
    if len(by_tag) != len(actions) or len({a.kind for a in actions}) != len(actions):
        raise TypeError("two actions in act/actiontable.py's ACTIONS share a tag or a kind")
    return by_tag


BY_TAG: dict[str, type[Action]] = check(ACTIONS, declared())
ACTION_TAGS: tuple[str, ...] = tuple(BY_TAG)


def taught() -> str:
    """The prompt's reference of every action, in the table's order (decide/instructions)."""
    return "\n".join(a.teach for a in ACTIONS)
