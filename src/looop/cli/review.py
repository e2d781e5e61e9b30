"""`looop review ID`: a worker's change as a reviewer reads it (workers/review.py), coloured and
paged on a terminal, plain otherwise, `--json` for machines; `--comment FILE:LINE TEXT` and
`--comment-all TEXT` add to the round being drafted (or `--edit`: written under the diff's
lines in $VISUAL/$EDITOR, cli/reviewedit.py), `--send` delivers it to the worker
(journaled as the user's, from the CLI)."""

from __future__ import annotations

import sys

import click

from looop.act.journal import append_journal
from looop.act.landaway import change_of
from looop.cli import idcomplete
from looop.cli.app import make_ctx
from looop.cli.reviewedit import edit
from looop.core.context import Ctx
from looop.home import jsonio
from looop.home.sessionfiles import attempts_of
from looop.home.terminal import for_terminal
from looop.workers import attempts, reviewrounds, reviewsend
from looop.workers.ids import normalise_target
from looop.workers.review import Review
from looop.workers.reviewgit import Commit, FileChange
from looop.workers.reviewrounds import Round

_VERIFY = {
    "passed": ("passed", "green"),
    "failed": ("FAILED", "red"),
    "pending": ("pending (runs once the worker ends)", "yellow"),
    "none": ("none set", None),
}

ACTOR = "user (cli)"  # as `looop land` journals its human


class _Out:
    """Lines of the page, styled only when they go to a terminal."""

    def __init__(self, colour: bool) -> None:
        self.colour = colour
        self.lines: list[str] = []

    def add(self, text: str, fg: str | None = None, bold: bool = False) -> None:
        text = for_terminal(text)  # a worker wrote it: no escape reaches the terminal
        self.lines.append(click.style(text, fg=fg, bold=bold or None) if self.colour else text)


def _head(out: _Out, r: Review) -> None:
    out.add(f"worker {r.wid} · branch {r.branch} · {r.base[:12]}..{r.tip[:12]}", bold=True)
    out.add(f"repo {r.repo}")
    said, fg = _VERIFY.get(r.verify.state, (r.verify.state, None))
    extra = f" ({r.verify.cmd})" if r.verify.cmd else ""
    out.add(f"verify: {said}{extra}", fg=fg)
    if r.moved:
        out.add("the branch moved: it is not where the worker's checkout left it", fg="red")
    if r.uncommitted:
        out.add("its worktree holds uncommitted work (not part of this change)", fg="yellow")
    if r.landed:
        out.add(f"{r.landed} — nothing left to land", fg="green")


def _rounds(out: _Out, r: Review) -> None:
    for rd in r.rounds:
        state = f"sent ({rd.sent})" if rd.sent else "draft (not sent: --send)"
        out.add(f"round {rd.n} on {rd.tip[:12]}, {state}:", bold=True)
        for c in rd.comments:
            out.add(f"  {c.where}: {c.text}")
    sent = [rd for rd in r.rounds if rd.sent]
    if sent:
        n = sent[-1].n
        if r.since_last:
            out.add(f"since round {n}: {len(r.since_last)} commit(s)", fg="cyan")
            for k in r.since_last:
                out.add(f"  {k.sha[:12]} {k.subject}")
        else:
            out.add(f"since round {n}: no new commits", fg="yellow")


def _stat(out: _Out, commits: tuple[Commit, ...], files: tuple[FileChange, ...], pad: str) -> None:
    out.add(f"{pad}commits ({len(commits)}):", bold=True)
    for c in commits:
        out.add(f"{pad}  {c.sha[:12]} {c.subject}", fg="yellow")
    added = sum(f.added for f in files if not f.binary)
    removed = sum(f.removed for f in files)
    out.add(f"{pad}files ({len(files)}, +{added} -{removed}):", bold=True)
    for f in files:
        stat = "binary" if f.binary else f"+{f.added} -{f.removed}"
        out.add(f"{pad}  {f.path}  {stat}  ({f.status})")


def _several(out: _Out, r: Review) -> None:
    """The head and stat of a change across several repositories: verify once, then each."""
    out.add(f"worker {r.wid} · {len(r.repos)} repositories", bold=True)
    said, fg = _VERIFY.get(r.verify.state, (r.verify.state, None))
    extra = f" ({r.verify.cmd})" if r.verify.cmd else ""
    out.add(f"verify: {said}{extra}", fg=fg)
    for each in r.repos:
        out.add("")
        out.add(
            f"repo {each.name}: {each.repo} · branch {each.branch} · "
            f"{each.base[:12]}..{each.tip[:12]}",
            bold=True,
        )
        if each.moved:
            out.add("  the branch moved: it is not where the worker's checkout left it", fg="red")
        if each.uncommitted:
            out.add("  its worktree holds uncommitted work (not part of this change)", fg="yellow")
        _stat(out, each.commits, each.files, "  ")


def proposed(wid: str, ask: str, reason: str) -> str:
    """The decider's landing proposal as one line, with how to answer it (every face's words)."""
    why = f": {reason}" if reason else ""
    return (
        f"the decider proposes landing this (ask {ask}){why} — approve: `looop land {wid}`; "
        f"decline: `looop answer {ask} no`"
    )


def render(r: Review, colour: bool) -> str:
    out = _Out(colour)
    several = len(r.repos) > 1
    if several:
        _several(out, r)
    else:
        _head(out, r)
    if r.proposal is not None:
        out.add(proposed(r.wid, r.proposal.ask, r.proposal.reason), fg="magenta", bold=True)
    if not several:
        out.add("")
        _stat(out, r.commits, r.files, "")
    if r.summary:
        out.add("")
        out.add(f"summary ({r.summary_from}):", bold=True)
        for line in r.summary.rstrip().splitlines():
            out.add(f"  {line}")
    if r.rounds:
        out.add("")
        _rounds(out, r)
    parts = r.repos if several else ()
    changed = [(f"{each.name}/", f) for each in parts for f in each.files]
    for prefix, f in changed or [("", f) for f in r.files]:
        out.add("")
        note = f" · {f.note}" if f.note else ""
        out.add(f"── {prefix}{f.path} ({f.status}){note}", fg="cyan", bold=True)
        if f.binary:
            out.add("  (binary)")
        for h in f.hunks:
            out.add(h.header, fg="cyan")
            for line in h.lines:
                out.add(line, fg="green" if line[:1] == "+" else "red" if line[:1] == "-" else None)
        if f.cut:
            out.add("  … (cut: a long diff; `looop worker diff` shows it whole)")
    return "\n".join(out.lines)


def _said(rd: Round, sent: bool) -> str:
    if sent:
        return f"round {rd.n} sent to worker: {rd.sent} ({len(rd.comments)} comment(s))"
    return f"round {rd.n} drafted: {len(rd.comments)} comment(s) — `--send` delivers them"


@click.command(
    "review",
    help="Review worker ID's change: its commits, the diff against its base (stat, then "
    "hunks), whether its verify passed, its own summary and the comment rounds sent back. "
    "--comment/--comment-all draft a round (--edit: write them under the diff's lines in "
    "$VISUAL or $EDITOR); --send delivers it as one message.",
)
@click.argument("worker_id", shell_complete=idcomplete.workers)
@click.option(
    "--comment",
    "on_lines",
    nargs=2,
    multiple=True,
    metavar="FILE:LINE TEXT",
    help="A comment on a line of the change (repeatable).",
)
@click.option(
    "--comment-all", "on_all", multiple=True, metavar="TEXT", help="A comment on the whole change."
)
@click.option(
    "--edit",
    "in_editor",
    is_flag=True,
    help="Write comments in $VISUAL/$EDITOR under the diff's lines (text above the first "
    "file: on the whole change).",
)
@click.option(
    "--send", is_flag=True, help="Deliver the drafted round to the worker (resumed if it ended)."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def review_cmd(
    worker_id: str,
    on_lines: tuple[tuple[str, str], ...],
    on_all: tuple[str, ...],
    in_editor: bool,
    send: bool,
    as_json: bool,
) -> None:
    ctx = make_ctx(events_to=None)
    wid = normalise_target(worker_id)
    group = attempts_of(str(ctx.paths.data), wid)
    if group and not (on_lines or on_all or send or in_editor):
        side = attempts.rows(ctx, wid, lambda a: _seen(ctx, a))
        click.echo(jsonio.dumps(side, indent=2) if as_json else attempts.table(wid, side))
        return
    for each in group or [wid]:  # the same comments to every attempt of a group
        c = change_of(ctx, each)  # here, on an SSH host or in a pod: the change is read there
        if group:
            click.echo(f"{each}: ", nl=False)
        if in_editor:
            got = edit(ctx, each, c)
            if isinstance(got, str):
                click.echo(f"nothing added: {got}")
                if send:
                    continue  # nothing new written: the draft is not sent behind one's back
            elif not (send or on_lines or on_all):
                click.echo(_said(got, False))
        if on_lines or on_all:
            rd = c.comment(list(on_lines), list(on_all))
            if not send:
                click.echo(_said(rd, False))
        if send:
            knobs = ctx.knobs()
            sent = c.send(knobs)
            # the human's step, journaled as the web's and watch's sends are
            append_journal(ctx, knobs, f"{ACTOR}: {reviewsend.sent_line(each, sent)}")
            click.echo(_said(sent, True))
    if on_lines or on_all or send or in_editor:
        return
    r = _seen(ctx, wid)
    if as_json:
        click.echo(jsonio.dumps(r.to_json(), indent=2, ensure_ascii=False))
        return
    tty = sys.stdout.isatty()
    text = render(r, colour=tty)
    if tty:
        click.echo_via_pager(text + "\n")  # $PAGER, else less, as git does
    else:
        click.echo(text)


def _seen(ctx: Ctx, wid: str) -> Review:
    r = change_of(ctx, wid).review()
    reviewrounds.saw(ctx, wid, r.tips())  # what a plain `looop land` (or --pick) now approves
    return r
