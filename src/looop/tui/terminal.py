"""The main pane of `looop watch`: the selected session's terminal (its scrollback rows, then
its screen, at the session's own width), following the output until the user scrolls up."""

from __future__ import annotations

from typing import Any

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from looop.tui.feed import SessionFeed, ShotFeed
from looop.tui.render import Painter


class TerminalView(ScrollView):
    """The selected session's terminal: scrollback rows, then the screen, at its own width."""

    can_focus = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.feed: SessionFeed | ShotFeed | None = None
        self.message: list[str] = []
        self.live = False  # paint the cursor only while the session runs
        self.follow = True  # stick to the bottom as output comes, until the user scrolls up
        self.painter = Painter()
        self._dropped = 0

    def show(self, feed: SessionFeed | ShotFeed | None, message: list[str] | None = None) -> None:
        self.feed = feed
        self.message = message or []
        self._dropped = feed.screen.dropped if feed else 0
        self.follow = True
        self._set_virtual()
        self.scroll_to(x=0, animate=False, immediate=True, force=True)
        self._stick()
        self.refresh()

    def _set_virtual(self) -> None:
        feed = self.feed
        if feed is None:
            self.virtual_size = Size(0, len(self.message) + 1)
        else:
            self.virtual_size = Size(feed.screen.columns, feed.line_count())

    def changed(self) -> None:
        """New output was emulated: follow it when at the bottom, else hold the view still."""
        feed = self.feed
        self._set_virtual()
        if feed is not None:
            shifted = feed.screen.dropped - self._dropped
            self._dropped = feed.screen.dropped
            if self.follow:
                self._stick()
            elif shifted:
                self.scroll_to(y=max(0, self.scroll_y - shifted), animate=False, immediate=True)
        self.refresh()

    def bottom(self) -> int:
        """Where following rests: the session's screen from its top, or, when what it shows
        is taller than the pane, the page ending at its last line that shows something. (The
        very bottom would open a session taller than the pane on its blank rows.)"""
        feed = self.feed
        if feed is None:
            return self.max_scroll_y
        used = feed.used_line_count() - self.scrollable_content_region.height
        return max(0, min(self.max_scroll_y, max(len(feed.screen.history), used)))

    def _stick(self, again: bool = True) -> None:
        """Scroll to the bottom now, and once more after the next layout (scrollbars that
        appear with the new content change the page height)."""
        if self.follow:
            self.scroll_to(y=self.bottom(), animate=False, immediate=True, force=True)
            if again:
                self.call_after_refresh(self._stick, False)

    def on_resize(self) -> None:
        self._stick()

    def scroll_lines(self, n: int) -> None:
        """A user scroll: following resumes once it reaches the bottom."""
        self.scroll_to(y=self.scroll_y + n, animate=False, immediate=True)
        self.follow = self.scroll_y >= self.bottom()

    def scroll_edge(self, end: bool) -> None:
        self.scroll_to(y=self.bottom() if end else 0, animate=False, immediate=True)
        self.follow = end

    def scroll_cols(self, sign: int) -> None:
        """Side to side across a screen wider than the pane, half the pane at a time."""
        step = max(1, self.scrollable_content_region.width // 2)
        self.scroll_to(x=self.scroll_x + sign * step, animate=False, immediate=True)

    def wide(self) -> str | None:
        """`cols 41–120 of 160` while the screen shown is wider than the pane, else None."""
        feed, width = self.feed, self.scrollable_content_region.width
        if feed is None or width <= 0 or feed.screen.columns <= width:
            return None
        left = int(self.scroll_x)
        return f"cols {left + 1}–{min(feed.screen.columns, left + width)} of {feed.screen.columns}"

    def on_mouse_scroll_up(self) -> None:
        self.follow = False

    def on_mouse_scroll_down(self) -> None:
        self.call_after_refresh(self._follow_if_at_end)

    def _follow_if_at_end(self) -> None:
        self.follow = self.scroll_y >= self.bottom()

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        scroll_x, scroll_y = self.scroll_offset
        feed = self.feed
        if feed is None:
            line = self.message[y - 1] if 1 <= y <= len(self.message) else ""
            strip = Strip([Segment("  " + line, Style(dim=True))]) if line else Strip([])
            return strip.apply_style(base).crop_extend(0, width, base)
        index = scroll_y + y
        if index >= feed.line_count():
            return Strip.blank(width, base)
        screen = feed.screen
        cols = screen.columns
        at = index - len(screen.history)
        cur = screen.cursor
        cursor = cur.x if self.live and not cur.hidden and at == cur.y else None
        segments = self.painter.segments(feed.row(index), cols, cursor)
        return Strip(segments, cols).apply_style(base).crop_extend(scroll_x, scroll_x + width, base)
