"""The keys of `looop watch`: its bindings, the list `?` shows, and the keys that act (answer
an ask, send a line, Ctrl-C, kill, pause/resume, a worker's review: tui/review.py), each
through the `Acts` the app was given (the CLI's own paths, journaled), off the UI thread, one
at a time, with a confirm before anything that cannot be taken back. What the view's own keys
do (select, scroll) is the app's."""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen

from looop.core.context import Ctx
from looop.home.errors import LooopError
from looop.human.mailbox import pending
from looop.tui.modals import Acts, KeysHelp, Line, acting, confirm
from looop.tui.render import FleetRow
from looop.tui.review import ReviewScreen

# the legend fits 80 columns; `?` lists every key. While the screen shown is wider than the
# pane its legend names the keys that scroll it side to side and where it is (f/End are in `?`).
KEYS = "? keys  a answer  s send  c ^C  k kill  p pause  f follow  Tab all  q quit"
WIDE_KEYS = "? keys  ← → {where}  a answer  s send  c ^C  k kill  p pause  q quit"
ALL_KEYS = [
    ("↑ ↓", "select a session (or click its row)"),
    ("← →", "scroll a screen wider than the pane left / right, half a pane a time"),
    ("Tab", "living sessions / all, finished ones too"),
    ("a", "answer a pending ask (the selected worker's first), confirmed"),
    ("s", "send a line to the selected worker (typed, then Enter)"),
    ("c", "Ctrl-C the selected worker, confirmed"),
    ("r", "review the selected worker's change: comment, send, land (confirmed)"),
    ("k", "kill the selected worker, confirmed"),
    ("p", "pause the pulse (workers keep running) or resume it, confirmed"),
    ("f / End", "follow the selected worker's output (its log, live)"),
    ("^P ^N", "scroll a line up / down"), ("^U ^D", "scroll half a page up / down"),
    ("PgUp PgDn", "scroll a page"), ("Home", "the top of its scrollback"),
    ("?", "this list"), ("q  ^C", "quit"),
]  # fmt: skip

# the main screen's keys: (key, action, description); while a small screen is up its keys are
# its own
BOUND = (
    ("up", "select(-1)", "previous"), ("down", "select(1)", "next"),
    ("left", "scroll_cols(-1)", ""), ("right", "scroll_cols(1)", ""),
    ("tab", "toggle_all", "living/all"),
    ("ctrl+p", "scroll_lines(-1)", ""), ("ctrl+n", "scroll_lines(1)", ""),
    ("ctrl+u", "scroll_lines(-1, 'half')", ""), ("ctrl+d", "scroll_lines(1, 'half')", ""),
    ("pageup", "scroll_lines(-1, 'page')", ""), ("pagedown", "scroll_lines(1, 'page')", ""),
    ("home", "scroll_edge(0)", ""), ("end", "scroll_edge(1)", ""),
    ("a", "answer", ""), ("s", "send_line", ""), ("c", "interrupt", ""), ("k", "kill", ""),
    ("p", "pause", ""), ("r", "review", ""), ("f", "scroll_edge(1)", ""),
    ("question_mark", "keys", ""), ("q", "quit", "quit"), ("ctrl+c", "quit", ""),
)  # fmt: skip
MAIN_ACTIONS = {action.split("(")[0] for _, action, _ in BOUND}


class KeysApp(App[None]):
    """The watch's keys (WatchApp is one): what acting needs of the app is declared here,
    what it does after acting (read the fleet again, say what it is doing) is the app's."""

    ctx: Ctx
    acts: Acts | None  # None: a view only (every acting key says so)
    acting: str | None  # what is being done off the UI thread, one at a time
    selected: str | None
    rows: list[FleetRow]

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(key, action, what, show=False, priority=True) for key, action, what in BOUND
    ]

    def refresh_fleet(self) -> None:
        """Read the fleet again and show it (the app's)."""
        raise NotImplementedError

    def _status_left(self) -> None:
        """Say what is being done in the status line (the app's)."""
        raise NotImplementedError

    # -- acting (each through `acts`, off the UI thread) ----------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """While a small screen is up, its keys (and typed letters) are its own."""
        return not (action in MAIN_ACTIONS and isinstance(self.screen, ModalScreen))

    def action_keys(self) -> None:
        self.push_screen(KeysHelp(ALL_KEYS))

    def _worker(self, verb: str) -> str | None:
        """The selected worker to act on, or None (said in a notification)."""
        sid = self.selected
        if acting(self, self.acts) is None:
            return None
        if sid is None or sid == "pulse":
            self.notify(f"select a worker to {verb} (↑ ↓)", severity="warning")
        elif not self._alive(sid):
            self.notify(f"{sid} is not running", severity="warning")
        else:
            return sid
        return None

    def _alive(self, sid: str) -> bool:
        row = next((r for r in self.rows if r.id == sid), None)
        return row is not None and row.alive

    def _act(self, what: str, job: Any, after: Any = None) -> None:
        """Run `job` (a call into acts returning its one-line done) on a thread of its own;
        its line or its refusal comes back as a notification, then `after()` runs."""
        if self.acting is not None:
            self.notify(f"still {self.acting}", severity="warning")
            return
        self.acting = what
        self._status_left()

        def run() -> None:
            try:
                said, bad = str(job()), False
            except (LooopError, OSError) as e:
                said, bad = str(e), True
            except Exception as e:  # a thread must always report back, or acting stays held
                said, bad = f"{what} failed: {type(e).__name__}: {e}", True
            try:
                self.call_from_thread(self._acted, said, bad, after)
            except RuntimeError:  # the app ended meanwhile: nobody to tell
                pass

        threading.Thread(target=run, name="watch-act", daemon=True).start()

    def _acted(self, said: str, bad: bool, after: Any = None) -> None:
        self.acting = None
        self.notify(said, severity="error" if bad else "information", timeout=6 if bad else 3)
        self.refresh_fleet()
        if after is not None:
            after()

    def action_review(self) -> None:
        """The selected worker's change in a pane of its own (tui/review.py)."""
        sid = self.selected
        if sid is None or sid == "pulse":
            self.notify("select a worker to review (↑ ↓)", severity="warning")
            return
        self.push_screen(ReviewScreen(self.ctx, sid, self.acts, self._act))

    def action_send_line(self) -> None:
        sid = self._worker("send a line to")
        acts = self.acts
        if sid is None or acts is None:
            return

        def typed(text: str | None) -> None:
            if text is not None and text.strip():
                self._act(f"sending to {sid}", lambda: acts.send(sid, text))

        self.push_screen(Line(f"send a line to {sid} (Enter is pressed after it)", "text"), typed)

    def _confirmed(self, verb: str, question: str, what: str, job: Any) -> None:
        """`job(acts, sid)` on the selected worker once `question` (of {sid}) is answered yes."""
        sid, acts = self._worker(verb), self.acts
        if sid is not None and acts is not None:
            go = lambda: self._act(what.format(sid=sid), lambda: job(acts, sid))  # noqa: E731
            confirm(self, question.format(sid=sid), go)

    def action_interrupt(self) -> None:
        ask = "Press Ctrl-C in {sid}?"
        self._confirmed("interrupt", ask, "Ctrl-C to {sid}", lambda a, s: a.keys(s, ["C-c"]))

    def action_kill(self) -> None:
        ask = "Kill worker {sid}? Its process group is stopped; it cannot be undone."
        self._confirmed("kill", ask, "killing {sid}", lambda a, s: a.kill(s))

    def action_pause(self) -> None:
        acts = acting(self, self.acts)
        if acts is None:
            return
        if self._alive("pulse"):
            question = "Pause the pulse? It stops after its beat; workers keep running."
            confirm(self, question, lambda: self._act("pausing", acts.pause))
        else:
            question = "Resume the pulse (`looop up`)? It beats again, and may call the AI."
            confirm(self, question, lambda: self._act("resuming", acts.resume))

    def action_answer(self) -> None:
        acts = acting(self, self.acts)
        if acts is None:
            return
        try:
            asks = pending(self.ctx.paths.asks, self.ctx.paths.answers)
        except (LooopError, OSError) as e:
            self.notify(f"asks unreadable: {e}", severity="error")
            return
        if not asks:
            self.notify("no pending asks")
            return
        mine = [a for a in asks if a.get("worker") == self.selected]
        ask = (mine or asks)[0]
        aid, who = str(ask.get("id")), str(ask.get("worker"))
        options = [str(o) for o in ask.get("options") or []]
        more = f" · {len(asks) - 1} more pending" if len(asks) > 1 else ""
        title = f"{who} asks ({aid}{more}):\n{ask.get('prompt')}"
        hint = f"one of: {', '.join(options)}" if options else "your answer"

        def typed(text: str | None) -> None:
            if text is None or not text.strip():
                return
            # always confirmed, as on the dashboard: an answer cannot be taken back
            confirm(
                self,
                f"Answer {aid} with: {text}?",
                lambda: self._act(f"answering {aid}", lambda: acts.answer(aid, text)),
            )

        self.push_screen(Line(title, hint), typed)
