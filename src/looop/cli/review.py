"""`looop review ID`: a worker's change as a reviewer reads it (workers/review.py), coloured and
paged on a terminal, plain otherwise, `--json` for machines; `--comment FILE:LINE TEXT` and
`--comment-all TEXT` add to the round being drafted (or `--edit`: written under the diff's
lines in the reviewer's editor, parsed back by workers/reviewsend.py; a refused file is kept
and opens again, so nothing written is lost), `--send` delivers it to the worker, journaled
as the user's, from the CLI. Landing it is `looop land`'s (cli/land.py): a review loads no
landing."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import click

from looop.act.landaway import change_of
from looop.act.landlocal import Here
from looop.cli import idcomplete
from looop.cli.app import ACTOR, make_ctx
from looop.core.context import Ctx
from looop.home import jsonio, store
from looop.home.errors import LooopError
from looop.home.sessionfiles import attempts_of
from looop.home.terminal import for_terminal
from looop.remote.fleet import remote_rows
from looop.workers import attempts, reviewrounds, reviewsend
from looop.workers.ids import normalise_target
from looop.workers.review import RepoChange, Review
from looop.workers.reviewgit import Commit, Diff, FileChange
from looop.workers.reviewrounds import Round, rounds_file

_VERIFY = {
    "passed": ("passed", "green"),
    "failed": ("FAILED", "red"),
    "pending": ("pending (runs once the worker ends)", "yellow"),
    "none": ("none set", None),
}


class _Out:
    """Lines of the page, styled only when they go to a terminal."""

    def __init__(self, colour: bool) -> None:
        self.colour = colour
        self.lines: list[str] = []

    def add(self, text: str, fg: str | None = None, bold: bool = False) -> None:
        text = for_terminal(text)  # a worker wrote it: no escape reaches the terminal
        self.lines.append(click.style(text, fg=fg, bold=bold or None) if self.colour else text)

    def take(self) -> str:
        """The lines added since, as one part of the page."""
        got, self.lines = self.lines, []
        return "".join(f"{line}\n" for line in got)


def _head(out: _Out, r: Review) -> None:
    out.add(f"worker {r.wid} · branch {r.branch} · {r.base[:12]}..{r.tip[:12]}", bold=True)
    out.add(f"repo {r.repo}")
    _verify(out, r)
    _marks(out, r, "")
    if r.landed:
        out.add(f"{r.landed} — nothing left to land", fg="green")


def _verify(out: _Out, r: Review) -> None:
    said, fg = _VERIFY.get(r.verify.state, (r.verify.state, None))
    out.add(f"verify: {said}" + (f" ({r.verify.cmd})" if r.verify.cmd else ""), fg=fg)


def _marks(out: _Out, each: Review | RepoChange, pad: str) -> None:
    if each.moved:
        out.add(f"{pad}the branch moved: it is not where the worker's checkout left it", fg="red")
    if each.uncommitted:
        out.add(f"{pad}its worktree holds uncommitted work (not part of this change)", fg="yellow")


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
    _verify(out, r)
    for each in r.repos:
        out.add("")
        out.add(
            f"repo {each.name}: {each.repo} · branch {each.branch} · "
            f"{each.base[:12]}..{each.tip[:12]}",
            bold=True,
        )
        _marks(out, each, "  ")
        _stat(out, each.commits, each.files, "  ")


def render(r: Review, colour: bool, diffs: Sequence[Diff] = ()) -> Iterator[str]:
    """The page in parts, each as soon as it is read: its head and stats, then each file's
    diff (of each repository's `diffs` as git writes it, when given)."""
    out = _Out(colour)
    several = len(r.repos) > 1
    if several:
        _several(out, r)
    else:
        _head(out, r)
    if (p := r.proposal) is not None:  # the decider's, with how to answer it
        why = f" (ask {p.ask}): {p.reason}" if p.reason else f" (ask {p.ask})"
        said = f"{why} — approve: `looop land {r.wid}`; decline: `looop answer {p.ask} no`"
        out.add(f"the decider proposes landing this{said}", "magenta", True)
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
    yield out.take()
    names = [f"{each.name}/" for each in r.repos] if several else [""]
    every: list[Iterable[FileChange]] = [d.files() for d in diffs]
    every = every or ([e.files for e in r.repos] if several else [r.files])
    for prefix, f in ((p, f) for p, files in zip(names, every, strict=True) for f in files):
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
        yield out.take()


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
        side = attempts.rows(ctx, wid, lambda a: _seen(ctx, a), remote_rows)
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
            # lazy: a send's machinery (the session client, a resume's start), for --send only
            from looop.act.roundsend import send as send_round

            sent = send_round(c, ctx.knobs(), ACTOR)  # journaled as the web's and watch's
            click.echo(_said(sent, True))
    if on_lines or on_all or send or in_editor:
        return
    if as_json:
        click.echo(jsonio.dumps(_seen(ctx, wid).to_json(), indent=2, ensure_ascii=False))
        return
    tty = sys.stdout.isatty()
    diffs: list[Diff] = []  # each repository's, its files shown as git writes them
    parts = render(_seen(ctx, wid, diffs), tty, diffs)
    if tty:
        click.echo_via_pager(parts)  # $PAGER, else less, as git does
    for part in () if tty else parts:
        click.echo(part, nl=False)


def _seen(ctx: Ctx, wid: str, diffs: list[Diff] | None = None) -> Review:
    r = change_of(ctx, wid).review(diffs)
    reviewrounds.saw(ctx, wid, r.tips())  # what a plain `looop land` (or --pick) now approves
    return r


def editor_of(env: dict[str, str]) -> str:
    """The reviewer's editor: $VISUAL, else $EDITOR, else vi (empty ones skipped)."""
    for name in ("VISUAL", "EDITOR"):
        if env.get(name, "").strip():
            return env[name].strip()
    return "vi"


def _run_editor(ctx: Ctx, path: Path) -> None:
    """The editor on `path`, on this terminal; one line when it does not run or fails. The
    command is a shell's words, as git runs it (`code --wait`, `emacs -nw`)."""
    env = ctx.child_env()
    editor = editor_of(env)
    argv = ["sh", "-c", f'{editor} "$@"', editor, str(path)]
    try:
        code = subprocess.run(argv, env=env, check=False).returncode
    except OSError as e:
        code, why = 127, str(e)
    else:
        why = "not found" if code == 127 else f"it ended with exit {code}"
    if code != 0:
        raise LooopError(
            f"the editor {editor!r} did not run ({why}) — set $VISUAL or $EDITOR to one that "
            "does; nothing was added"
        )


def edit(ctx: Ctx, wid: str, c: Here) -> Round | str:
    """The round with what the reviewer wrote added, or why nothing was. `c`: where the
    worker's checkouts are (its change read there)."""
    d = reviewsend.draft(c.review())
    path = rounds_file(ctx, wid).with_name(f"{wid}.edit.txt")  # beside its rounds: it stays
    kept = path.exists()
    if not kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        store.atomic_write(path, d.text)
    try:
        _run_editor(ctx, path)
    except LooopError:
        if not kept:
            path.unlink(missing_ok=True)
        raise
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        got = reviewsend.parse(d, text)
        if got.nothing:
            path.unlink(missing_ok=True)
            return got.nothing
        rd = c.comment(list(got.on_lines), list(got.on_all))
    except LooopError as e:
        raise LooopError(
            f"{e} — what you wrote is kept in {path} and opens again with --edit (delete it "
            "to start afresh)"
        ) from None
    path.unlink(missing_ok=True)
    return rd
