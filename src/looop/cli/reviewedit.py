"""`looop review ID --edit`: the change opened in the reviewer's editor ($VISUAL, else $EDITOR,
else vi, as git chooses), what they wrote under its lines parsed back (workers/reviewsend.py)
into the comments `--comment` makes and added to the round being drafted. A file refused (a
diff line edited or deleted, a comment under a header) is kept and opens again with the next
`--edit`, so nothing the reviewer wrote is lost."""

from __future__ import annotations

import subprocess
from pathlib import Path

from looop.act.landlocal import Here
from looop.core.context import Ctx
from looop.home import store
from looop.home.errors import LooopError
from looop.workers import reviewsend
from looop.workers.reviewrounds import Round, rounds_file

DEFAULT_EDITOR = "vi"


def editor_of(env: dict[str, str]) -> str:
    """The reviewer's editor: $VISUAL, else $EDITOR, else vi (empty ones skipped)."""
    for name in ("VISUAL", "EDITOR"):
        if env.get(name, "").strip():
            return env[name].strip()
    return DEFAULT_EDITOR


def edit_file(ctx: Ctx, wid: str) -> Path:
    """Where the file being edited stands: beside the worker's rounds, so a refused one stays."""
    return rounds_file(ctx, wid).with_name(f"{wid}.edit.txt")


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
    path = edit_file(ctx, wid)
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
