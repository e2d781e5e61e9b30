"""Comments back to a worker, drafted: each FILE:LINE comment takes a few lines of the file
around its line at the branch's tip, and the round is kept as a draft until sent — as ONE
message with every comment (act/roundsend.py, which a review of the change does not load)."""

from typing import NamedTuple

from looop.core.context import Ctx
from looop.home.errors import LooopError
from looop.home.terminal import for_terminal
from looop.workers import reviewgit
from looop.workers.review import Review, worker_trees
from looop.workers.reviewgit import FileChange
from looop.workers.reviewrounds import Comment, Round, load_rounds, save_rounds
from looop.workers.treerecord import Tree

CONTEXT_LINES = 3  # each side of a comment's line
MAX_COMMENT = 4000  # characters of one comment


def parse_place(spec: str) -> tuple[str, int]:
    """FILE:LINE (the last colon splits: a path may hold colons)."""
    path, sep, num = spec.rpartition(":")
    if not sep or not path or not num.isdigit() or int(num) < 1:
        raise LooopError(f"--comment '{spec}': say where as FILE:LINE (e.g. src/app.py:12)")
    return path, int(num)


def _text(text: str) -> str:
    if not text.strip():
        raise LooopError("a review comment needs some text")
    if len(text) > MAX_COMMENT:
        raise LooopError(f"a review comment is {len(text)} characters; keep it under {MAX_COMMENT}")
    return text.strip()


def line_comment(ctx: Ctx, tree: Tree, tip: str, spec: str, text: str) -> Comment:
    """A comment on FILE:LINE of the change, with the lines around it at `tip`."""
    path, line = parse_place(spec)
    files = {f.path for f in reviewgit.Diff(ctx, tree, tree.base, tip).files()}
    if path not in files:
        raise LooopError(
            f"{path} is not part of worker {tree.wid}'s change — `looop review {tree.wid}` "
            "lists its files (or use --comment-all)"
        )
    if (lines := reviewgit.file_lines(ctx, tree, tip, path)) is None:
        raise LooopError(f"{path} is not a text file at the branch's tip — use --comment-all")
    if line > len(lines):
        raise LooopError(f"{path} has {len(lines)} lines at the branch's tip, not {line}")
    lo, hi = max(1, line - CONTEXT_LINES), min(len(lines), line + CONTEXT_LINES)
    shown = tuple(f"{'>' if n == line else ' '}{n:>5} | {lines[n - 1]}" for n in range(lo, hi + 1))
    return Comment(_text(text), path, line, shown)


def _comment(ctx: Ctx, trees: list[Tree], tips: list[str], spec: str, text: str) -> Comment:
    """A line comment; a worker of several repositories is told REPO/FILE:LINE, REPO its
    checkout's folder (the path as the worker sees it from where it starts)."""
    if len(trees) == 1:
        return line_comment(ctx, trees[0], tips[0], spec, text)
    name, sep, rest = spec.partition("/")
    for tree, tip in zip(trees, tips, strict=True):
        if sep and tree.part == name:
            got = line_comment(ctx, tree, tip, rest, text)
            return got._replace(file=f"{name}/{got.file}")
    names = ", ".join(t.part for t in trees)
    raise LooopError(
        f"--comment '{spec}': worker {trees[0].wid} works in several repositories — say "
        f"which as REPO/FILE:LINE, REPO one of: {names}"
    )


def add_comments(ctx: Ctx, wid: str, on_lines: list[tuple[str, str]], on_all: list[str]) -> Round:
    """Add comments to the worker's draft round (made on its branch's tip now); every
    comment is checked before the draft is written."""
    tip, new = line_comments(ctx, wid, on_lines)
    return add_round(ctx, wid, tip, [*new, *whole_comments(on_all)])


def line_comments(ctx: Ctx, wid: str, on_lines: list[tuple[str, str]]) -> tuple[str, list[Comment]]:
    """The branch's tip and each FILE:LINE comment with the lines around it there, read
    where the worker's checkouts are (a host's satellite answers this for its home)."""
    trees = worker_trees(ctx, wid)
    tips = [reviewgit.branch_tip(ctx, t) for t in trees]
    return tips[0], [_comment(ctx, trees, tips, spec, text) for spec, text in on_lines]


def whole_comments(on_all: list[str]) -> list[Comment]:
    return [Comment(_text(text)) for text in on_all]


def add_round(ctx: Ctx, wid: str, tip: str, new: list[Comment]) -> Round:
    """`new` added to the draft round kept at this home (a fresh round when none is open)."""
    rounds = load_rounds(ctx, wid)
    if rounds and not rounds[-1].sent:
        draft = rounds.pop()
        draft = draft._replace(tip=tip, comments=(*draft.comments, *new))
    else:
        n = rounds[-1].n + 1 if rounds else 1
        draft = Round(n, int(ctx.clock.now()), tip, tuple(new))
    save_rounds(ctx, wid, [*rounds, draft])
    return draft


# -- review comments written in an editor (`looop review ID --edit`): the change as a file to
# reply in, like an email's quoted reply. Every line of the diff is quoted ("> "); what the
# reviewer writes on lines of their own under a quoted line is a comment on it, and text above
# the first file is a comment on the whole change. Parsed back into the very comments
# `--comment FILE:LINE TEXT` and `--comment-all TEXT` make, or refused in one line: the diff's
# lines are not the reviewer's to edit or delete, and a header is no line to comment on.

QUOTE = "> "
NOTE = "#"  # a line of the instructions (or the reviewer's own aside): left out

_HOW = """# Review of worker {wid}: write each comment on lines of its own, under the line of
# the diff it is about. The diff's lines start with ">": leave them as they are. Text
# above the first file is a comment on the whole change. Lines starting with "#" are
# left out. Save and quit; a file left as it is (or emptied) adds nothing.
"""


class Place(NamedTuple):
    """One quoted line of the draft and what a comment under it is on: `spec` FILE:LINE (the
    form --comment takes), "" the whole change (with `about` said first), None nothing (a
    header: refused)."""

    quoted: str
    spec: str | None
    about: str


class Draft(NamedTuple):
    text: str
    places: tuple[Place, ...]


class Edited(NamedTuple):
    """What the reviewer wrote: line comments as (FILE:LINE, TEXT), whole-change ones, and
    why nothing was added when both are empty."""

    on_lines: tuple[tuple[str, str], ...]
    on_all: tuple[str, ...]
    nothing: str = ""


def _file_places(prefix: str, f: FileChange) -> list[Place]:
    path = f"{prefix}{f.path}"  # the spec's, as --comment names it
    name = for_terminal(path)
    head = f"{name}'s header"
    out = [Place(f"{QUOTE}=== {name} ({f.status}{', binary' if f.binary else ''})", None, head)]
    for h in f.hunks:
        at = h.header.split(" @@")[0] + " @@"
        out.append(Place(f"{QUOTE}{h.header}", None, f"the hunk header {at} of {name}"))
        n = h.new_start
        last = 0  # the last line of the new file this hunk showed
        for line in h.lines:
            mark = line[:1]
            if mark in (" ", "+"):
                spec: str | None = f"{path}:{n}"
                last, n = n, n + 1
            elif last:  # a removed line: said on the new file's line above where it was
                spec = f"{path}:{last}"
            elif h.new_count:  # removed at the hunk's top: the line that now stands there
                spec = f"{path}:{max(n, 1)}"
            else:  # removed with nothing in its place (a deleted file): the whole change
                spec = ""
            # a worker wrote it: no escape or carriage return reaches the reviewer's editor
            out.append(Place(f"{QUOTE}{for_terminal(line)}", spec, f"{name}, a removed line"))
    return out


def draft(r: Review) -> Draft:
    """The file the reviewer's editor opens: the instructions, then every file's diff quoted."""
    several = len(r.repos) > 1
    changed = [(f"{each.name}/", f) for each in r.repos for f in each.files] if several else []
    places: list[Place] = []
    for prefix, f in changed or [("", f) for f in r.files]:
        places += _file_places(prefix, f)
    body = "\n".join(p.quoted for p in places)
    return Draft(_HOW.format(wid=r.wid) + "\n\n" + body + "\n", tuple(places))


def _same(a: str, b: str) -> bool:
    return a.rstrip() == b.rstrip()  # an editor may trim a context line's trailing space


def _clip(text: str) -> str:
    text = text.strip()
    return text if len(text) <= 50 else text[:49] + "…"


def _mismatch(places: tuple[Place, ...], i: int, got: str | None) -> LooopError:
    """The one line that says which of the diff's lines was edited or deleted."""
    keep = " — comments go on lines of their own; nothing was added"
    if got is None or any(_same(p.quoted, got) for p in places[i + 1 :]):
        return LooopError(f"the diff's line {_clip(places[i].quoted)!r} was deleted{keep}")
    if i >= len(places):
        return LooopError(
            f"a line {_clip(got)!r} below the diff's last is quoted as if it were the diff's{keep}"
        )
    return LooopError(
        f"the diff's line {_clip(places[i].quoted)!r} was edited into {_clip(got)!r}{keep}"
    )


def _take(out: Edited, at: Place | None, said: list[str]) -> Edited:
    """`said` (a comment's lines) added under `at` (None: above the first file)."""
    text = "\n".join(said).strip()
    if not text:
        return out
    if at is None:
        return Edited(out.on_lines, (*out.on_all, text))
    if at.spec is None:
        raise LooopError(
            f"a comment under {at.about} ({_clip(text)!r}): move it under a line of the diff, "
            "or above the first file for the whole change; nothing was added"
        )
    if at.spec == "":
        return Edited(out.on_lines, (*out.on_all, f"{at.about}: {text}"))
    return Edited((*out.on_lines, (at.spec, text)), out.on_all)


def parse(d: Draft, edited: str) -> Edited:
    """The comments the reviewer wrote into `d`; LooopError (one line, nothing taken) when a
    line of the diff was edited or deleted, or a comment stands under a header."""
    if edited == d.text:
        return Edited((), (), "the file was left as it was")
    lines = [ln for ln in edited.split("\n") if not ln.startswith(NOTE)]
    if not any(ln.strip() for ln in lines):
        return Edited((), (), "the file was emptied")
    out, at, said, i = Edited((), ()), None, [], 0
    for ln in lines:
        if not ln.startswith(QUOTE.strip()):
            said.append(ln)
            continue
        if i >= len(d.places) or not _same(d.places[i].quoted, ln):
            raise _mismatch(d.places, i, ln)
        out, at, said, i = _take(out, at, said), d.places[i], [], i + 1
    out = _take(out, at, said)
    if i < len(d.places):
        raise _mismatch(d.places, i, None)
    if not out.on_lines and not out.on_all:
        return Edited((), (), "no comment was written")
    return out
