"""The small screens `looop watch` acts through: a yes/no confirm, a line to type, the keys."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Protocol

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

MODAL_CSS = """
ModalScreen { align: center middle; }
#box { width: 76; max-width: 100%; height: auto; max-height: 100%; padding: 0 1;
  border: round $accent; background: $panel; }
#box Static { width: 100%; }
#hint { color: $text-muted; }
"""


class Acts(Protocol):
    """What the watch can do, each through the CLI's own path (the executor, the mailbox, the
    daemon) and journaled: a one-line "done", or LooopError with the refusal's one line."""

    def answer(self, ask_id: str, text: str) -> str: ...

    def send(self, sid: str, text: str) -> str: ...

    def keys(self, sid: str, keys: list[str]) -> str: ...

    def kill(self, sid: str) -> str: ...

    def pause(self) -> str: ...

    def resume(self) -> str: ...

    def comment(self, sid: str, file: str, line: int, text: str) -> str:
        """A review comment drafted on FILE:LINE ("" and 0: on the whole change)."""
        ...

    def send_review(self, sid: str) -> str: ...

    def land(self, sid: str, mode: str, at: dict[str, str]) -> str:
        """The change landed at the tips shown (`at`; mode "": as configured); a conflict's
        LooopError carries `comment`, the comment to send the worker about it."""
        ...


def acting(where: App[Any] | ModalScreen[Any], acts: Acts | None) -> Acts | None:
    """`acts`, or None said in a notification (a watch given no way to act only views)."""
    if acts is None:
        where.notify("this watch only views (no way to act was given)", severity="warning")
    return acts


class Confirm(ModalScreen[bool]):
    """`question` — y does it, n or Esc does not."""

    DEFAULT_CSS = MODAL_CSS
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "done(True)", "yes", priority=True),
        Binding("n", "done(False)", "no", priority=True),
        Binding("escape", "done(False)", "no", priority=True),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="box"):
            yield Static(self.question, id="question", markup=False)
            yield Static("y yes · n / Esc no", id="hint", markup=False)

    def action_done(self, yes: bool) -> None:
        self.dismiss(yes)


def confirm(app: App[Any], question: str, then: Callable[[], object]) -> None:
    """Ask `question`; `then()` once it is answered yes."""

    def done(yes: bool | None) -> None:
        if yes:
            then()

    app.push_screen(Confirm(question), done)


class Line(ModalScreen[str | None]):
    """A line to type under `title` (an ask's question, a worker's name): Enter gives it,
    Esc gives None."""

    DEFAULT_CSS = MODAL_CSS
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "cancel", priority=True)]

    def __init__(self, title: str, placeholder: str) -> None:
        super().__init__()
        self.title_text, self.placeholder = title, placeholder

    def compose(self) -> ComposeResult:
        with Vertical(id="box"):
            yield Static(self.title_text, id="title", markup=False)
            yield Input(placeholder=self.placeholder, id="line")
            yield Static("Enter sends · Esc cancels", id="hint", markup=False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class KeysHelp(ModalScreen[None]):
    """Every key of the watch, one a line."""

    DEFAULT_CSS = MODAL_CSS
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "close", "close", priority=True)
    ]

    def __init__(self, rows: list[tuple[str, str]]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        width = max(len(k) for k, _ in self.rows)
        text = "\n".join(f"{k.ljust(width)}  {what}" for k, what in self.rows)
        with Vertical(id="box"):
            yield Static(text, id="keys-all", markup=False)
            yield Static("Esc or ? closes", id="hint", markup=False)

    def action_close(self) -> None:
        self.dismiss(None)
