"""What every action is made of: the Action base, the Decision that carries one, the ids they
name and the readers their parsers take fields with.

An action is ONE declaration, a frozen dataclass subclassing Action: its tag (the JSON
spelling), its kind (the word events use), how the prompt teaches it, how it is parsed, its
one-line summary and what it does (`perform`). A class that leaves one out is refused when it
is declared (TypeError at import) and is abstract to mypy, so no action can be taken,
summarised or journaled without the code that carries it out. The table of them all, in the
order the prompt teaches them, is act/actiontable.py.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import MISSING, Field, dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Self

from looop.core.text import one_line
from looop.home import jsonio
from looop.home.errors import LooopError
from looop.home.sandboxpolicy import SandboxPolicy, parse_sandbox

if TYPE_CHECKING:
    from looop.core.context import Ctx
    from looop.home.config import Config, Knobs


class DecisionError(LooopError):
    """A decision the executor refuses: bad JSON, unknown action, a field of the wrong type."""


_SAFE_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")
_WORKER_PREFIX = "looop-"
_PULSE = "pulse"


def shown(value: Any, limit: int = 40) -> str:
    """A value as one clipped JSON token for error messages (newlines stay escaped)."""
    if isinstance(value, str) and len(value) > limit:
        value = value[:limit] + "…"
    text = jsonio.dumps(value)
    return text if len(text) <= limit + 12 else text[: limit + 8] + "…"


def check_id(kind: str, value: str) -> str:
    """A name that becomes a file or session name: no traversal, no hidden files, 1-64 chars."""
    if not isinstance(value, str) or not _SAFE_ID.fullmatch(value) or ".." in value:
        raise DecisionError(
            f"invalid {kind} id {shown(value)}: use 1-64 letters, digits, '.', '_' or '-', "
            "not starting with '.'"
        )
    return value


def strip_worker_prefix(value: str) -> str:
    return value[len(_WORKER_PREFIX) :] if value.startswith(_WORKER_PREFIX) else value


def worker_target(value: str) -> str:
    """A worker id as the model may spell it (`looop-x` or `x`); the pulse is never a target."""
    wid = strip_worker_prefix(value) if isinstance(value, str) else value
    if wid == _PULSE:
        raise DecisionError(
            '"pulse" is the control loop, not a worker: name a worker id (see `looop worker list`)'
        )
    return check_id("worker", wid)


def not_int(v: Any) -> bool:
    return isinstance(v, bool) or not isinstance(v, int)


def set_field(obj: object, name: str, value: Any) -> None:
    """Normalise a field of a frozen action in its __post_init__."""
    object.__setattr__(obj, name, value)


AGENTS = ("pulse", "mcp")  # the actors that are agents: the decider, web/mcpserver.ACTOR


class Mover(NamedTuple):
    """Who makes a move and under what: the home, its knobs, the actor ("pulse", "cli",
    "web:…"), whether a human waived the shell tripwire, and the beat's config (None: read
    the file now)."""

    ctx: Ctx
    knobs: Knobs
    actor: str
    allow_dangerous: bool = False
    cfg: Config | None = None

    @property
    def decided(self) -> bool:
        """The decider asked for this move (not a human)."""
        return self.actor == "pulse"

    @property
    def by_agent(self) -> bool:
        """An agent asked for this move, the decider or a human's agent over MCP (`looop
        mcp`), not a human's own hand: what waits for a human (a stalled worker) refuses it."""
        return self.actor in AGENTS

    def config(self) -> Config:
        return self.cfg if self.cfg is not None else self.ctx.config()


# What an action class must declare itself (see the module doc).
_DECLARED = ("tag", "kind", "teach")
_DEFINED = ("parse", "summary", "perform")


class Action(ABC):
    """One move the decider (or a human) may ask for. Subclasses are frozen dataclasses that
    declare every part below; the executor runs `perform`, then journals."""

    tag: ClassVar[str]  # the JSON spelling: {"action": tag}
    kind: ClassVar[str]  # the word events, tick.decided and `looop run` use
    teach: ClassVar[str]  # the prompt's reference of it: its fields, what it does, an example

    def __init_subclass__(cls, part: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if part:  # a part of actions (OnWorker), not one
            return
        missing = [n for n in _DECLARED if not isinstance(cls.__dict__.get(n), str)]
        # a part (Plain, OnWorker, Reasoned) may define one for the actions made of it
        missing += [n for n in _DEFINED if getattr(getattr(cls, n), "__isabstractmethod__", 0)]
        if missing:
            raise TypeError(
                f"action {cls.__name__} does not declare {', '.join(missing)}: an action is "
                "one whole declaration (act/decision.py)"
            )

    @classmethod
    @abstractmethod
    def parse(cls, obj: dict[str, Any]) -> Self:
        """The action from a decoded decision object; DecisionError names a bad field."""

    @abstractmethod
    def summary(self) -> str:
        """The journal fallback and the tick.decided summary: one short line."""

    @abstractmethod
    def perform(self, by: Mover) -> str | None:
        """Do the move, or raise (ExecError, OSError) having journaled nothing. Returns what it
        found when its goal state already held (journaled with it)."""

    def goal(self) -> str | None:
        """The goal/worker id the action moves (fairness stamps it); None when untargeted."""
        return None


class Plain(Action, part=True):
    """An action whose fields are all strings, parsed by name: one with a default may be
    left out (or null)."""

    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    @classmethod
    def parse(cls, obj: dict[str, Any]) -> Self:
        tag, got = cls.tag, {}
        for f in fields(cls):
            v = req_str(tag, obj, f.name) if f.default is MISSING else opt_str(tag, obj, f.name)
            if v is not None:
                got[f.name] = v
        return cls(**got)


@dataclass(frozen=True)
class OnWorker(Plain, part=True):
    """An action on one worker, its `id` a target as the model may spell it."""

    id: str

    def __post_init__(self) -> None:
        set_field(self, "id", worker_target(self.id))

    def goal(self) -> str | None:
        return strip_worker_prefix(self.id)


def said(head: str, why: str) -> str:
    """A summary: its head, then why on one line when there is a why."""
    return f"{head} · {one_line(why)}" if why.strip() else head


@dataclass(frozen=True)
class Reasoned(OnWorker, part=True):
    """A worker and why (kill_worker, propose_land), summed up as `<head> <id> · <reason>`."""

    head: ClassVar[str]
    reason: str = ""

    def summary(self) -> str:
        return said(f"{self.head} {self.id}", self.reason)


class Decision(NamedTuple):
    action: Action
    journal: str | None = None
    next_interval_s: int | None = None


# ---- the readers an action's parse takes its fields with -------------------------------------


_TYPE_NAMES = ((type(None), "null"), (bool, "a boolean"), (int | float, "a number"),
               (str, "a string"), (list, "an array"))  # fmt: skip


def type_name(v: Any) -> str:
    return next((name for t, name in _TYPE_NAMES if isinstance(v, t)), "an object")


def bad_field(tag: str, field: str, want: str) -> DecisionError:
    return DecisionError(f"{tag}: field '{field}' must be {want}")


def req_str(tag: str, obj: dict[str, Any], field: str) -> str:
    v = obj.get(field)
    if not isinstance(v, str):
        raise bad_field(tag, field, "a string")
    return v


def opt_str(tag: str, obj: dict[str, Any], field: str) -> str | None:
    """Absent and null both mean 'not given'."""
    return None if obj.get(field) is None else req_str(tag, obj, field)


def opt_int(tag: str, obj: dict[str, Any], field: str, bounds: tuple[int, int]) -> int | None:
    v = obj.get(field)
    if v is None:
        return None
    low, high = bounds
    if not_int(v) or not low <= v <= high:
        raise bad_field(tag, field, f"an integer from {low} to {high}")
    assert isinstance(v, int)
    return v


def opt_usd(tag: str, obj: dict[str, Any], field: str) -> float | None:
    """A USD amount: absent or null is none; the range is the action's to check."""
    v = obj.get(field)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise bad_field(tag, field, f"a number of USD, got {type_name(v)}")
    if isinstance(v, int) and abs(v) > 10**15:  # float() of a huge int would overflow
        raise bad_field(tag, field, f"a number of USD, got {shown(v)}")
    return float(v)


def opt_bool(tag: str, obj: dict[str, Any], field: str) -> bool:
    """Absent and null both mean false."""
    v = obj.get(field)
    if v is None:
        return False
    if not isinstance(v, bool):
        raise bad_field(tag, field, "true or false")
    return v


def opt_sandbox(tag: str, obj: dict[str, Any]) -> SandboxPolicy | None:
    v = obj.get("sandbox")
    if v is None:
        return None
    try:
        return parse_sandbox(v, "sandbox")
    except ValueError as e:
        at, expected = str(e).split("|", 1)
        raise bad_field(tag, at, expected) from None
