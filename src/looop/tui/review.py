"""The review pane of `looop watch` (r on a worker): its change as `looop review` shows it —
the head, verify, commits, the stat, its report, the comment rounds, then the hunks, coloured —
as lines a cursor moves through. c comments on the line under the cursor (a line of the
branch's tip: added or context) or, anywhere else, on the whole change; w on the whole change;
s sends the round; l lands the change (both confirmed); Esc closes. Drawn from the review's
JSON generically: files with hunks, in as many repository sections as the review has; an
attempt's whole group side by side above its own change."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from looop.act.landaway import change_of
from looop.act.moves.far import backend_for
from looop.core.context import Ctx
from looop.home.errors import LooopError
from looop.home.sessionfiles import attempts_of
from looop.home.terminal import for_terminal
from looop.remote.fleet import remote_rows
from looop.tui.modals import Acts, Line, acting, confirm
from looop.workers import attempts

Place = tuple[str, int] | None  # (file, line at the branch's tip) a comment can go on
Act = Callable[[str, Callable[[], str], Callable[[], None] | None], None]
KEYS = "↑ ↓ PgUp PgDn move  c comment (line)  w comment (whole)  s send  l land  Esc close"
VERIFY = {
    "passed": ("passed", "green"),
    "failed": ("FAILED", "red"),
    "pending": ("pending (runs once the worker ends)", "yellow"),
    "none": ("none set", ""),
}


def read_review(ctx: Ctx, sid: str) -> dict[str, Any]:
    """`looop review SID --json`, read by the worker's Backend where its checkouts are (here,
    its SSH host or its pod); one line (LooopError) when it cannot be read."""
    return backend_for(ctx, sid).review(sid).to_json()


def side_by_side(ctx: Ctx, sid: str) -> list[Text]:
    """An attempt's whole group above its own change, as `looop review GROUP` shows it."""
    group, _, n = sid.rpartition(".")
    if not (n.isdigit() and sid in attempts_of(str(ctx.paths.data), group)):
        return []
    try:
        got = attempts.rows(ctx, group, lambda a: change_of(ctx, a).review(), remote_rows)
    except LooopError as e:
        return [_line(str(e), "red")]
    return [
        _line(ln, "bold" if i == 0 else "")
        for i, ln in enumerate(attempts.table(group, got).splitlines())
    ]


def _line(text: str, style: str = "") -> Text:
    return Text(for_terminal(text), style=style, no_wrap=True, overflow="ellipsis")


def _head(r: dict[str, Any]) -> list[Text]:
    v = r["verify"]
    said, colour = VERIFY.get(v["state"], (v["state"], ""))
    span = f"{r['base'][:12]}..{r['tip'][:12]}"
    out = [
        _line(f"worker {r['wid']} · branch {r['branch']} · {span}", "bold"),
        _line(f"verify: {said}" + (f" ({v['cmd']})" if v["cmd"] else ""), colour),
    ]
    if r.get("moved"):
        out.append(_line("the branch moved: it is not where the worker's checkout left it", "red"))
    if r.get("uncommitted"):
        out.append(_line("its worktree holds uncommitted work (not part of this change)", "yellow"))
    if r.get("landed"):
        out.append(_line(f"{r['landed']} — nothing left to land", "green"))
    if isinstance(r.get("proposal"), dict):  # the decider's landing proposal: l approves it
        p = r["proposal"]
        why = f": {p['reason']}" if p.get("reason") else ""
        out.append(_line(f"the decider proposes landing this (ask {p['ask']}){why} — l lands it; "
                         f"decline: looop answer {p['ask']} no", "bold magenta"))  # fmt: skip
    out.append(_line(f"commits ({len(r['commits'])}):", "bold"))
    out += [_line(f"  {c['sha'][:12]} {c['subject']}", "yellow") for c in r["commits"]]
    if r.get("summary"):
        out.append(_line("the worker's report:", "bold"))
        out += [_line(f"  {ln}") for ln in str(r["summary"]).rstrip().splitlines()]
    for rd in r.get("rounds", []):
        state = f"sent ({rd['sent']})" if rd["sent"] else "draft (s sends it)"
        out.append(_line(f"round {rd['n']} on {rd['tip'][:12]}, {state}:", "bold"))
        for c in rd["comments"]:
            where = f"{c['file']}:{c['line']}" if c["file"] else "the whole change"
            out.append(_line(f"  {where}: {c['text']}"))
    return out


def _file(f: dict[str, Any], notes: list[dict[str, Any]]) -> list[tuple[Text, Place]]:
    stat = "binary" if f.get("binary") else f"+{f['added']} -{f['removed']}"
    note = f" · {f['note']}" if f.get("note") else ""
    title = _line(f"── {f['path']}  {stat} ({f['status']}){note}", "bold cyan")
    out: list[tuple[Text, Place]] = [(title, None)]
    for h in f.get("hunks", []):
        out.append((_line(h["header"], "cyan"), None))
        n = int(h["new_start"])
        for raw in h["lines"]:
            mark = raw[:1]
            place: Place = None
            if mark in ("+", " "):
                place, n = (f["path"], n), n + 1
            style = "green" if mark == "+" else "red" if mark == "-" else ""
            gutter = f"{place[1]:>5} " if place else "      "
            out.append((_line(gutter + raw, style), place))
            for c in notes:
                if place is not None and c["line"] == place[1]:
                    out.append((_line(f"      ↳ {c['text']}", "bold yellow"), place))
    if f.get("cut"):
        out.append((_line("  … (cut: a long diff; `looop worker diff` shows it whole)"), None))
    return out


def review_lines(r: dict[str, Any]) -> list[tuple[Text, Place]]:
    """Every line of the pane, each with the place a comment on it goes (None: none)."""
    out: list[tuple[Text, Place]] = [(t, None) for t in _head(r)]
    rounds = r.get("rounds") or []
    latest = rounds[-1]["comments"] if rounds else []
    repos = r.get("repos")
    sections: list[dict[str, Any]] = repos if isinstance(repos, list) and repos else [r]
    for part in sections:
        if len(sections) > 1:
            name = part.get("repo") or part.get("name") or ""
            out.append((_line(f"repository {name}", "bold"), None))
        # a worker of several repos: a path (and a comment's place) names its checkout's folder
        under = f"{part['name']}/" if len(sections) > 1 and part.get("name") else ""
        for f in part.get("files", []):
            f = {**f, "path": under + f["path"]}
            notes = [c for c in latest if c.get("file") == f["path"]]
            out += _file(f, notes)
    if not any(part.get("files") for part in sections):
        out.append((_line("no changes yet"), None))
    return out


class ReviewScreen(ModalScreen[None]):
    """One worker's review; acting keys go through `act` (the app's one-at-a-time runner)."""

    DEFAULT_CSS = """
    ReviewScreen { background: $background; }
    #review-box { width: 100%; height: 100%; }
    #review-title { height: 1; background: $panel; text-wrap: nowrap; text-overflow: ellipsis; }
    #review-list { height: 1fr; border: none; }
    #review-keys { height: 1; color: $text-muted; background: $panel; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "comment(False)", "comment", priority=True),
        Binding("w", "comment(True)", "whole", priority=True),
        Binding("s", "send", "send", priority=True),
        Binding("l", "land", "land", priority=True),
        Binding("escape,q", "close", "close", priority=True),
    ]

    def __init__(self, ctx: Ctx, sid: str, acts: Acts | None, act: Act) -> None:
        super().__init__()
        self.ctx, self.sid, self.acts, self.act = ctx, sid, acts, act
        self.data: dict[str, Any] = {}
        self.places: list[Place] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="review-box"):
            yield Static(f"review of {self.sid}", id="review-title", markup=False)
            yield OptionList(id="review-list")
            yield Static(KEYS, id="review-keys", markup=False)

    def on_mount(self) -> None:
        self.reload()
        self.query_one("#review-list", OptionList).focus()

    @property
    def lines(self) -> OptionList:
        return self.query_one("#review-list", OptionList)

    def reload(self) -> None:
        """Read the review again and draw it, the cursor kept where it was."""
        if not self.is_attached:  # closed while the action it follows ran
            return
        try:
            self.data = read_review(self.ctx, self.sid)
        except LooopError as e:
            self.data = {}
            self.places = [None]
            self.lines.clear_options()
            self.lines.add_option(Option(_line(str(e), "red")))
            return
        at = self.lines.highlighted
        drawn = [(t, None) for t in side_by_side(self.ctx, self.sid)] + review_lines(self.data)
        self.places = [p for _, p in drawn]
        self.lines.clear_options()
        self.lines.add_options([Option(t) for t, _ in drawn])
        self.lines.highlighted = min(at or 0, len(drawn) - 1)
        drafts = self.draft()
        title = f"review of {self.sid} · {len(self.data['files'])} file(s)"
        title += f" · {drafts} comment(s) drafted (s sends)" if drafts else ""
        self.query_one("#review-title", Static).update(title)

    def draft(self) -> int:
        rounds = self.data.get("rounds") or []
        return len(rounds[-1]["comments"]) if rounds and not rounds[-1]["sent"] else 0

    def action_close(self) -> None:
        self.dismiss(None)

    def action_comment(self, whole: bool) -> None:
        acts = acting(self, self.acts)
        at = self.lines.highlighted
        place = None if whole or at is None or at >= len(self.places) else self.places[at]
        if acts is None or not self.data:
            return
        where = f"{place[0]}:{place[1]}" if place else "the whole change"

        def typed(text: str | None) -> None:
            if text is None or not text.strip():
                return
            file, line = place if place else ("", 0)
            job = lambda: acts.comment(self.sid, file, line, text)  # noqa: E731
            self.act(f"commenting on {where}", job, self.reload)

        self.app.push_screen(Line(f"a comment on {where} ({self.sid})", "your comment"), typed)

    def action_send(self) -> None:
        acts = acting(self, self.acts)
        if acts is None or not self.data:
            return
        n = self.draft()
        if not n:
            self.notify("no comments drafted — c on a line, or w on the whole change")
            return
        question = f"Send {n} comment(s) to {self.sid} as one message? An ended worker is resumed."
        job = lambda: acts.send_review(self.sid)  # noqa: E731
        confirm(self.app, question, lambda: self.act("sending", job, self.reload))

    def action_land(self) -> None:
        acts = acting(self, self.acts)
        if acts is None or not self.data:
            return
        if self.data.get("landed"):
            self.notify(f"{self.data['landed']} — nothing left to land", severity="warning")
            return
        unsent = f" Your {self.draft()} drafted comment(s) stay unsent." if self.draft() else ""

        def how(mode: str | None) -> None:
            if mode is None:
                return
            mode = mode.strip()
            said = mode or "as configured"
            question = (
                f"Land worker {self.sid}'s change ({said}) into its base? "
                f"It cannot be taken back from here.{unsent}"
            )
            # what this pane shows is what lands, never later: each repository's tip by its
            # folder's name ("": a worker of one)
            repos = self.data.get("repos") or [self.data]
            shown = {str(p.get("name") or ""): str(p["tip"]) for p in repos}
            job = lambda: self._land(acts, mode, shown)  # noqa: E731
            confirm(self.app, question, lambda: self.act(f"landing {self.sid}", job, self.reload))

        title = f"land {self.sid}: Enter lands as configured, or type ff, merge or pr"
        self.app.push_screen(Line(title, "ff · merge · pr (empty: as configured)"), how)

    def _land(self, acts: Acts, mode: str, at: dict[str, str]) -> str:
        """On its thread: a conflict is said, and the comment to send back is offered."""
        try:
            return acts.land(self.sid, mode, at)
        except LooopError as e:
            back = getattr(e, "comment", "")
            if back:
                self.app.call_from_thread(self._offer, str(back))
            raise

    def _offer(self, comment: str) -> None:
        acts = self.acts
        if acts is None:
            return

        def both() -> str:
            acts.comment(self.sid, "", 0, comment)
            return acts.send_review(self.sid)

        question = f"Send it back to {self.sid} as a comment: '{comment}'?"
        confirm(self.app, question, lambda: self.act("sending it back", both, self.reload))
