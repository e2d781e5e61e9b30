"""`looop watch`: a full-screen view of the sessions you can work from (Textual).

Main pane: the selected session's terminal, its output (this machine's Backend, `output`)
replayed through looop's own emulator at its size and followed. Docked below: the pulse and the
workers with their health. One status line on top (pulse, next beat, spend, pending asks), the
key legend at the bottom. The view itself only reads; a key acts (answer an ask, type a line,
Ctrl-C, kill, pause/resume) through the `Acts` it is given — the CLI's own paths, journaled —
off the UI thread, with a confirm before anything that cannot be taken back.

Workers away from home (an SSH host, a cluster) are listed and shown too: their rows and their
screens come through their backends on threads of their own, at a gentle pace, so a slow or
cut host never holds the app up; while one does not answer, its pane says so.

The main pane is tui/terminal.py, the keys and what acting ones do tui/keys.py, the status
line's left part tui/statusline.py."""

from __future__ import annotations

import threading
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import DataTable, Static

from looop.act.moves import far as reach_far
from looop.core.context import Ctx
from looop.home.config import KNOBS
from looop.home.errors import LooopError
from looop.remote import engine
from looop.remote.fleet import far_rows
from looop.sessions.state import Session, SessionError, list_sessions
from looop.tui import render
from looop.tui.feed import SessionFeed, ShotFeed
from looop.tui.keys import KEYS, WIDE_KEYS, KeysApp
from looop.tui.modals import Acts
from looop.tui.render import FleetRow, default_selection, fleet_rows, row_cells
from looop.tui.statusline import status_left
from looop.tui.terminal import TerminalView
from looop.workers.errors import HostUnreachable
from looop.workers.needsinput import fleet_view

if TYPE_CHECKING:
    from looop.workers.backend import Backend

POLL_S = 0.3  # output.log size check
FLEET_S = 1.0  # fleet table and status line
PUMP_BUDGET_S = 0.03  # emulation per event-loop turn while a replay catches up
FAR_FLEET_S = 3.0  # workers away from home: their hosts asked for the fleet
FAR_SCREEN_S = 1.0  # the selected remote worker's screen asked for
FAR_SLOW_S = 4.0  # a look taking longer is said in the status line

EMPTY = "no sessions — `looop up` starts the pulse, `looop worker start ID …` a worker"

COLUMNS = tuple((k.upper(), k) for k in ("id", "health", "state", "up", "idle", "verify", "note"))
FLEET_VISIBLE = 5  # rows the fleet pane shows at least; a taller terminal shows more


class Far(Protocol):
    """Where the workers away from home are found: their fleet rows and their backends."""

    def rows(self) -> list[dict[str, Any]]: ...

    def backend(self, sid: str) -> Backend | None: ...


class HomeFar:
    """The home's own records of its workers away from home (loop/fleet, the backends)."""

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx

    def rows(self) -> list[dict[str, Any]]:
        return far_rows(self.ctx)

    def backend(self, sid: str) -> Backend | None:
        return engine.remote_of(self.ctx, sid)


class WatchApp(KeysApp):
    """Read-only: it only reads session dirs and the loop's state files (and asks remote
    workers' backends for their rows and screens)."""

    class FarFleet(Message):
        """The rows of the workers away from home (None: the look failed: keep the last)."""

        def __init__(self, rows: list[dict[str, Any]] | None) -> None:
            super().__init__()
            self.rows = rows

    class FarShot(Message):
        """A remote worker's screenshot, or why there is none."""

        def __init__(self, sid: str, shot: dict[str, Any] | None, error: str | None) -> None:
            super().__init__()
            self.sid, self.shot, self.error = sid, shot, error

    TITLE = "looop watch"
    ENABLE_COMMAND_PALETTE = False  # Ctrl-P scrolls here
    CSS = f"""
    #status {{ height: 1; background: $panel; }}
    #status-left {{ width: 1fr; height: 1; text-wrap: nowrap; text-overflow: ellipsis; }}
    #status-right {{ width: auto; max-width: 30%; height: 1; padding: 0 1;
      text-wrap: nowrap; text-overflow: ellipsis; }}
    #term {{ height: 1fr; }}
    #fleet {{ height: {FLEET_VISIBLE + 1}; }}
    #keys {{ height: 1; color: $text-muted; background: $panel; }}
    """

    def __init__(
        self,
        ctx: Ctx,
        selected: str | None = None,
        show_all: bool = False,
        since_s: float | None = None,
        far: Far | None = None,
        acts: Acts | None = None,
    ) -> None:
        super().__init__()
        self.ctx = ctx
        self.acts = acts  # None: a view only (every acting key says so)
        self.acting: str | None = None  # what is being done off the UI thread, one at a time
        self.far = far if far is not None else HomeFar(ctx)
        self.far_rows: dict[str, dict[str, Any]] = {}
        self.fleet_seen: list[dict[str, Any]] = []  # the last fleet read: the needs-you count
        self.far_feed: ShotFeed | None = None
        self.far_error: str | None = None  # why the selected remote pane shows no screen
        self._far_fleet_since: float | None = None  # a look in flight since (monotonic)
        self._far_shot_since: float | None = None
        self._far_looked = False  # the first look at the hosts came back
        self.selected = selected
        self.show_all = show_all
        self.since_s = since_s  # finished workers heard from this recently are listed too
        self.next_beat: float | None = None  # when the pulse said it beats next (unix s)
        self.sessions: dict[str, Session] = {}
        self.rows: list[FleetRow] = []
        self.feed: SessionFeed | None = None
        self._table_keys: list[str] = []
        self._table_cells: dict[str, tuple[tuple[str, str], ...]] = {}
        self._pumping = False

    # -- layout ----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with Horizontal(id="status"):
            yield Static(id="status-left", markup=False)
            yield Static(id="status-right", markup=False)
        yield TerminalView(id="term")
        yield DataTable(id="fleet", cursor_type="row", show_cursor=True)
        yield Static(KEYS, id="keys", markup=False)

    @property
    def term(self) -> TerminalView:
        return self.query_one("#term", TerminalView)

    @property
    def table(self) -> DataTable[Text]:
        return self.query_one("#fleet", DataTable)

    def on_mount(self) -> None:
        table = self.table
        table.can_focus = False  # every key is the app's; the table only shows the cursor
        for label, key in COLUMNS:
            table.add_column(label, key=key)
        self.refresh_fleet()
        self.look_far_fleet()
        self.set_interval(FAR_FLEET_S, self.look_far_fleet)
        self.set_interval(FAR_SCREEN_S, self.look_far_screen)
        self.set_interval(FLEET_S, self.refresh_fleet)
        self.set_interval(POLL_S, self.poll_output)
        self.set_interval(1.0, self._status_left)  # the countdown to the next beat ticks

    # -- the fleet -------------------------------------------------------------------------
    def refresh_fleet(self) -> None:
        try:
            sessions = list_sessions(self.ctx.paths.data)
        except OSError:
            sessions = []
        self.sessions = {s.id: s for s in sessions}
        here = fleet_view(self.ctx, sessions, self._stuck_secs())
        workers = self.fleet_seen = render.with_far(here, self.far_rows, self.sessions)
        since = (self.since_s, self.ctx.clock.now()) if self.since_s is not None else None
        needing = render.needing_you(str(self.ctx.paths.data), workers)
        self.rows = fleet_rows(
            sessions, workers, self.show_all, keep=self.selected, since=since, needing=needing
        )
        # a chosen id may be a remote worker's, listed once its host's first look is back
        listed = self.selected in {r.id for r in self.rows}
        if not listed and (self.selected is None or self._far_looked):
            self.selected = default_selection(self.rows)
        self._fill_table()
        self._sync_feed()
        self._status_left()
        self._status_right()

    def _is_far(self, sid: str | None) -> bool:
        return render.is_far(sid, self.far_rows, self.sessions)

    def _stuck_secs(self) -> int:
        try:
            return self.ctx.knobs().num("worker_stuck_secs")
        except LooopError:  # a broken config: the status line says so; health uses the default
            return int(KNOBS["worker_stuck_secs"].default)

    def _fill_table(self) -> None:
        table = self.table
        now = self.ctx.clock.now()
        keys = [r.id for r in self.rows]
        cells = {r.id: row_cells(r, now, r.id == self.selected) for r in self.rows}
        seen = {k: tuple((c.plain, str(c.style)) for c in v) for k, v in cells.items()}
        with table.prevent(DataTable.RowHighlighted, DataTable.RowSelected):
            if keys != self._table_keys:
                table.clear()
                for r in self.rows:
                    table.add_row(*cells[r.id], key=r.id)
            else:
                for k in keys:
                    if seen[k] != self._table_cells.get(k):
                        for (_, col), cell in zip(COLUMNS, cells[k], strict=True):
                            table.update_cell(k, col, cell, update_width=True)
            if self.selected in keys:
                table.move_cursor(row=keys.index(self.selected))
        self._table_keys = keys
        self._table_cells = seen
        self._fit_fleet()

    def _fit_fleet(self) -> None:  # as tall as its rows, to 2/5 of the terminal (each second)
        most = max(FLEET_VISIBLE, self.size.height * 2 // 5 - 1)
        self.table.styles.height = min(max(len(self.rows), FLEET_VISIBLE), most) + 1

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """A mouse click on a row (keyboard moves never reach here: the app owns the keys)."""
        sid = event.row_key.value
        if sid is not None and sid != self.selected:
            self.select(sid)

    def select(self, sid: str) -> None:
        self.selected = sid
        self._fill_table()
        self._sync_feed()
        self._status_right()

    # -- the main pane ---------------------------------------------------------------------
    def _sync_feed(self) -> None:
        term = self.term
        if self._is_far(self.selected):
            self._sync_far()
            return
        self.far_feed = None
        s = self.sessions.get(self.selected) if self.selected else None
        if s is None:
            self.feed = None
            if self.sessions:
                dead = sum(1 for x in self.sessions.values() if not x.alive)
                msg = [f"no living sessions — Tab shows {dead} finished"]
            else:
                msg = [EMPTY]
            if term.feed is not None or term.message != msg:
                term.show(None, msg)
            return
        feed = self.feed
        if feed is None or feed.sid != s.id or feed.started_at != s.started_at:
            out = partial(reach_far.here(self.ctx).output, s.id)  # this machine's Backend
            feed = SessionFeed(s.id, out, s.cols, s.rows, s.started_at, self.ctx.clock.monotonic)
            feed.open()
            self.feed = feed
            term.live = s.alive
            term.show(feed)
            self.pump()
            return
        term.live = s.alive
        if (s.cols, s.rows) != feed.size and not feed.pending:
            feed.resize(s.cols, s.rows)
            term.changed()

    # -- workers away from home -------------------------------------------------------------
    def look_far_fleet(self) -> None:
        """Ask for the remote workers' rows on a thread (one look at a time)."""
        if self._far_fleet_since is not None:
            return
        self._far_fleet_since = self.ctx.clock.monotonic()
        threading.Thread(target=self._far_fleet_job, name="watch-far-fleet", daemon=True).start()

    def _far_fleet_job(self) -> None:
        try:
            rows: list[dict[str, Any]] | None = self.far.rows()
        except Exception:  # a thread must always report back, or looks would stop for good
            rows = None
        self._post(self.FarFleet(rows))

    def on_watch_app_far_fleet(self, msg: FarFleet) -> None:
        self._far_fleet_since = None
        self._far_looked = True
        if msg.rows is not None:
            self.far_rows = {str(r["id"]): r for r in msg.rows if r.get("id")}
            self.refresh_fleet()

    def _sync_far(self) -> None:
        sid = self.selected
        row = self.far_rows.get(sid or "")
        if sid is None or row is None:
            return
        term = self.term
        self.feed = None
        term.live = bool(row.get("alive"))
        if self.far_feed is None or self.far_feed.sid != sid:
            self.far_feed = ShotFeed(sid)
            self.far_error = None
            term.show(None, [f"asking host {row.get('host')} for {sid}'s screen…"])
            self.look_far_screen()

    def look_far_screen(self) -> None:
        """Ask for the selected remote worker's screen on a thread (one look at a time; a
        finished worker's screen is asked for once)."""
        feed = self.far_feed
        if feed is None or self._far_shot_since is not None:
            return
        row = self.far_rows.get(feed.sid) or {}
        if not row.get("alive") and feed.hash is not None:
            return
        self._far_shot_since = self.ctx.clock.monotonic()
        job = partial(self._far_shot_job, feed.sid)
        threading.Thread(target=job, name="watch-far-screen", daemon=True).start()

    def _far_shot_job(self, sid: str) -> None:
        shot: dict[str, Any] | None = None
        error: str | None = None
        try:
            far = self.far.backend(sid)
            if far is None:
                error = f"{sid} is no longer a worker away from home"
            else:
                shot = far.screen(sid, "json", False)
        except Exception as e:  # a host out of reach (by its kind, a pod's API too): said
            plain = isinstance(e, SessionError) and not isinstance(e, HostUnreachable)
            error = str(e) if plain else f"unreachable — {e}".rstrip(" —")
        self._post(self.FarShot(sid, shot, error))

    def _post(self, msg: Message) -> None:
        try:
            self.post_message(msg)
        except RuntimeError:  # the app ended while a host was being asked: nobody to tell
            pass

    def on_watch_app_far_shot(self, msg: FarShot) -> None:
        self._far_shot_since = None
        feed = self.far_feed
        if feed is None or feed.sid != msg.sid:
            self.look_far_screen()  # the selection moved meanwhile: look at the new one
            return
        term = self.term
        row = self.far_rows.get(msg.sid) or {}
        if msg.shot is None:
            self.far_error = msg.error
            text = [
                f"{msg.sid} on host {row.get('host')}: {msg.error}",
                "",
                "a worker whose host does not answer is not taken for dead;",
                "its screen comes back here once the host answers again",
            ]
            if term.feed is not None or term.message != text:
                term.show(None, text)
        else:
            self.far_error = None
            if feed.apply(msg.shot) or term.feed is not feed:
                if term.feed is feed:
                    term.changed()
                else:
                    term.show(feed)
        self._status_right()

    def poll_output(self) -> None:
        feed = self.feed
        if feed is None:
            return
        got = feed.poll()
        if got is None:  # the log was replaced (same id, new session): start over
            self.feed = None
            self._sync_feed()
        elif got:
            self.pump()

    def pump(self) -> None:
        """Emulate a slice, repaint, and come back soon while bytes are pending, so a long
        replay keeps the keys responsive."""
        if self._pumping:
            return
        self._pumping = True
        try:
            feed = self.feed
            if feed is None:
                return
            done = feed.pump(PUMP_BUDGET_S)
            self.term.changed()
        finally:
            self._pumping = False
        if not done:
            self.set_timer(0.001, self.pump)
        else:
            self._status_right()

    # -- the status line -------------------------------------------------------------------
    def _status_left(self) -> None:
        """Pulse, next beat, spend and asks first (tui/statusline.py)."""
        left = status_left(self.ctx, self.acting, self.fleet_seen)
        self.query_one("#status-left", Static).update(left)

    def _status_right(self) -> None:
        if self._is_far(self.selected) and self.far_feed is not None:
            self.query_one("#status-right", Static).update(self._far_status(self.far_feed))
            self._keys_line()
            return
        s = self.sessions.get(self.selected) if self.selected else None
        feed = self.feed
        if s is None or feed is None:
            text = "all" if self.show_all else "living"
        else:
            cols, rows = feed.size
            text = f"▸ {s.id} · {s.label} · {cols}×{rows}"
            if feed.pending:
                text += " · replaying…"
            elif not self.term.follow:
                text += " · scrolled (End follows)"
        self._keys_line()
        self.query_one("#status-right", Static).update(text)

    def _keys_line(self) -> None:
        """The legend, and where a screen wider than the pane is scrolled to (← →)."""
        wide = self.term.wide()
        keys = self.query_one("#keys", Static)
        keys.update(KEYS if wide is None else WIDE_KEYS.format(where=wide))

    def _far_status(self, feed: ShotFeed) -> str:
        row = self.far_rows.get(feed.sid) or {}
        cols, rows = feed.size
        text = f"▸ {feed.sid} @{row.get('host')} · {row.get('label') or row.get('state')}"
        if feed.hash is not None:
            text += f" · {cols}×{rows}"
        since = self._far_shot_since
        if self.far_error is not None or row.get("health") == "unreachable":
            text += "" if text.endswith("unreachable") else " · unreachable"
        elif since is not None and self.ctx.clock.monotonic() - since > FAR_SLOW_S:
            text += " · asking its host…"
        return text

    # -- actions ---------------------------------------------------------------------------
    def action_select(self, delta: int) -> None:
        ids = [r.id for r in self.rows]
        if not ids:
            return
        i = ids.index(self.selected) if self.selected in ids else (-1 if delta > 0 else 0)
        j = max(0, min(len(ids) - 1, i + delta))
        if ids[j] != self.selected:
            self.select(ids[j])

    def action_toggle_all(self) -> None:
        self.show_all = not self.show_all
        self.refresh_fleet()

    def _scrolled(self) -> None:
        self.call_after_refresh(self._status_right)

    def action_scroll_lines(self, sign: int, span: str = "line") -> None:
        """A line, half a page or a page (`span`) up (-1) or down (1)."""
        height = self.term.size.height
        steps = {"line": 1, "half": max(1, height // 2), "page": max(1, height - 1)}
        self.term.scroll_lines(sign * steps[span])
        self._scrolled()

    def action_scroll_edge(self, end: int) -> None:
        self.term.scroll_edge(bool(end))
        self._scrolled()

    def action_scroll_cols(self, sign: int) -> None:
        self.term.scroll_cols(sign)
        self._scrolled()
