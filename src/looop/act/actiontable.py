"""The table of every action, in the order the prompt teaches them: each tag and where its whole
declaration (act/decision.py) lives in act/moves/. A declaration is loaded when its tag is first
parsed or performed (a `looop kill` loads the worker moves, not the shell's or the schedules'),
and every one when the table is read whole: the prompt's reference (each decide). Read whole,
a class declared in act/moves/ and left out of this table, a row naming no such class, or two
rows sharing a tag or a kind is a TypeError, so no action is taught, parsed or performed by
halves."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

from looop.act import moves
from looop.act.decision import Action

# tag -> "module.Class" under act/moves/, in the order the prompt teaches them.
ROWS: tuple[tuple[str, str], ...] = (
    ("noop", "notes.Noop"),
    ("run_shell", "runshell.RunShell"),
    ("write_goal", "files.WriteGoal"),
    ("archive_goal", "files.ArchiveGoal"),
    ("write_sensor", "files.WriteSensor"),
    ("remove_sensor", "files.RemoveSensor"),
    ("write_playbook", "files.WritePlaybook"),
    ("start_worker", "workers.StartWorker"),
    ("kill_worker", "kill.KillWorker"),
    ("propose_land", "notes.ProposeLand"),
    ("steer_session", "sessions.SteerSession"),
    ("send_key", "sessions.SendKey"),
    ("restart_session", "sessions.RestartSession"),
    ("send_notification", "notes.SendNotification"),
    ("write_schedule", "notes.WriteSchedule"),
    ("drop_schedule", "notes.DropSchedule"),
)
ACTION_TAGS: tuple[str, ...] = tuple(tag for tag, _ in ROWS)
_WHERE = dict(ROWS)


def action_for(tag: str) -> type[Action]:
    """The class declared for `tag` (a tag of the table), its module loaded now."""
    module, _, name = _WHERE[tag].rpartition(".")
    cls = getattr(_load(module), name, None)
    if not (isinstance(cls, type) and issubclass(cls, Action) and cls.tag == tag):
        raise TypeError(
            f"act/actiontable.py's row {tag!r} names {_WHERE[tag]}, which declares no action "
            f"tagged {tag!r}: correct the row"
        )
    return cls


def all_actions() -> tuple[type[Action], ...]:
    """Every row's class in the table's order, every module of act/moves/ loaded and the
    whole checked (`check`)."""
    for entry in sorted(os.listdir(moves.__path__[0])):
        if entry.endswith(".py") and entry != "__init__.py":
            _load(entry[:-3])
    actions = tuple(action_for(tag) for tag in ACTION_TAGS)
    check(actions, declared())
    return actions


def _load(module: str) -> ModuleType:
    # lazy: the table's declarations: a move's module loads when its tag is first used
    return importlib.import_module(f"{moves.__name__}.{module}")


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
            f"action {', '.join(left_out)} is declared but not in act/actiontable.py's ROWS: "
            "add its row, or it could be neither taught, parsed nor performed"
        )
    by_tag = {a.tag: a for a in actions}
    if len(by_tag) != len(actions) or len({a.kind for a in actions}) != len(actions):
        raise TypeError("two actions in act/actiontable.py's ROWS share a tag or a kind")
    return by_tag


def taught() -> str:
    """The prompt's reference of every action, in the table's order (decide/prompt)."""
    return "\n".join(a.teach for a in all_actions())
