"""Review comments written in an editor (workers/reviewsend.py): the diff quoted line by line,
a comment under a line is on that line (FILE:LINE as --comment takes it), text above the first
file on the whole change; an unchanged or emptied file adds nothing and says why; an edited or
deleted diff line, or a comment under a header, is refused in one line naming it."""

from __future__ import annotations

import pytest

from looop.cli.review import editor_of
from looop.home.errors import LooopError
from looop.workers.review import RepoChange, Review, Verify
from looop.workers.reviewgit import FileChange, Hunk
from looop.workers.reviewsend import Draft, draft, parse

ESC = "\x1b"


def _review(*files: FileChange, repos: tuple[RepoChange, ...] = ()) -> Review:
    return Review(
        "w1", "/r", "looop/w1", "a" * 40, "b" * 40, (), files, Verify("none"), "", "", False,
        False, (), (), repos,
    )  # fmt: skip


APP = FileChange(
    "app.py",
    "modified",
    2,
    1,
    (
        Hunk(
            "@@ -1,3 +1,4 @@ def f",
            1,
            4,
            (" def f(x):", "-    return x", "+    y = x", "+    return y", " "),
        ),
    ),
)
GONE = FileChange("old.txt", "deleted", 0, 2, (Hunk("@@ -1,2 +0,0 @@", 0, 0, ("-a", "-b")),))


def _d() -> Draft:
    return draft(_review(APP, GONE))


def _under(d: Draft | str, line: str, text: str) -> str:
    """The draft with `text` written on a line of its own under the quoted `line`."""
    out = (d.text if isinstance(d, Draft) else d).split("\n")
    at = out.index(line)
    return "\n".join([*out[: at + 1], text, *out[at + 1 :]])


def test_every_line_of_the_diff_is_quoted_after_the_instructions() -> None:
    d = _d()
    assert d.text.startswith("# Review of worker w1")
    assert "> === app.py (modified)" in d.text and "> @@ -1,3 +1,4 @@ def f" in d.text
    assert ">  def f(x):" in d.text and "> -    return x" in d.text and "> +    y = x" in d.text
    assert "> === old.txt (deleted)" in d.text


def test_a_comment_under_a_line_is_on_its_line_in_the_new_file() -> None:
    d = _d()
    text = _under(d, "> +    return y", "why a temporary?\n  say it in one line")
    text = _under(text, ">  def f(x):", "name it better")
    got = parse(d, text)
    assert got.on_lines == (
        ("app.py:1", "name it better"),
        ("app.py:3", "why a temporary?\n  say it in one line"),
    )
    assert got.on_all == () and got.nothing == ""


def test_a_removed_line_is_said_on_the_line_above_and_a_deleted_files_on_the_whole() -> None:
    d = _d()
    got = parse(d, _under(_under(d, "> -    return x", "keep this"), "> -b", "why delete it?"))
    assert got.on_lines == (("app.py:1", "keep this"),)
    assert got.on_all == ("old.txt, a removed line: why delete it?",)


def test_text_above_the_first_file_is_on_the_whole_change() -> None:
    d = _d()
    got = parse(d, "Add a test first.\n\n" + d.text)
    assert got.on_all == ("Add a test first.",) and got.on_lines == ()


def test_an_unchanged_or_emptied_file_adds_nothing_and_says_why() -> None:
    d = _d()
    assert parse(d, d.text).nothing == "the file was left as it was"
    assert parse(d, "").nothing == "the file was emptied"
    assert parse(d, "# only notes\n\n").nothing == "the file was emptied"
    assert parse(d, d.text.replace("> === app", "\n\n> === app")).nothing == (
        "no comment was written"
    )
    assert parse(d, "# my aside\n" + d.text).nothing == "no comment was written"


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (lambda t: t.replace("> +    y = x\n", ""), "the diff's line '> +    y = x' was deleted"),
        (
            lambda t: t.replace("> +    y = x", "> +    y = x + 1"),
            "was edited into '> +    y = x + 1'",
        ),
        (lambda t: t.replace("> -b", ""), "the diff's line '> -b' was deleted"),
        (lambda t: t + "> stray\n", "'> stray' below the diff's last is quoted"),
        (
            lambda t: t.replace("> === app.py (modified)\n", "> === app.py (modified)\nhi\n"),
            "a comment under app.py's header ('hi')",
        ),
        (
            lambda t: t.replace("def f\n", "def f\nhere\n"),
            "under the hunk header @@ -1,3 +1,4 @@ of app.py",
        ),
    ],
)
def test_an_edited_or_deleted_diff_line_or_a_comment_under_a_header_is_one_line(
    edit: object, said: str
) -> None:
    d = _d()
    with pytest.raises(LooopError) as e:
        parse(d, edit(d.text))  # type: ignore[operator]
    msg = str(e.value)
    assert said in msg and "\n" not in msg and "nothing was added" in msg, msg


def test_an_editor_trimming_a_context_lines_trailing_space_is_no_edit() -> None:
    d = _d()
    text = _under(d, "> +    return y", "ok").replace(">  \n", ">\n")
    assert parse(d, text).on_lines == (("app.py:3", "ok"),)


def test_a_workers_escape_or_carriage_return_is_shown_never_sent_to_the_editor() -> None:
    evil = FileChange("x", "added", 1, 0, (Hunk("@@ -0,0 +1 @@", 1, 1, (f"+a{ESC}]52;c;x\a\rb",)),))
    d = draft(_review(evil))
    assert ESC not in d.text and "\r" not in d.text and "\\x1b]52" in d.text
    assert parse(d, d.text + "fine\n").on_lines == (("x:1", "fine"),)


def test_several_repositories_name_each_file_by_its_checkouts_folder() -> None:
    one = RepoChange("app", "/a", "looop/w1", "a", "b", (), (APP,), False, False)
    two = RepoChange("lib", "/l", "looop/w1", "a", "b", (), (GONE,), False, False)
    d = draft(_review(APP, repos=(one, two)))
    assert "> === app/app.py (modified)" in d.text and "> === lib/old.txt (deleted)" in d.text
    assert parse(d, _under(d, "> +    y = x", "hm")).on_lines == (("app/app.py:2", "hm"),)


def test_the_editor_is_visual_then_editor_then_vi_as_git_chooses() -> None:
    assert editor_of({"VISUAL": "code --wait", "EDITOR": "nano"}) == "code --wait"
    assert editor_of({"VISUAL": " ", "EDITOR": "nano"}) == "nano"
    assert editor_of({}) == "vi"
