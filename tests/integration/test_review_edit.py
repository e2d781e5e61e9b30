"""`looop review ID --edit` with a scripted editor (real git, a real worker session): the
change opens in $VISUAL/$EDITOR (from looop's environment, vi when neither is set), what the
editor writes under the diff's lines becomes the same comments --comment makes, text above the
first file one on the whole change; a file left as it is adds nothing and says so; a diff line
edited is refused in one line and the file kept for the next --edit; an editor that is not
there or fails is one line and nothing is added."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from looop.core.context import Ctx
from looop.sessions.client import wait
from tests.helpers import Cli
from tests.integration.workerchange import cli, repo, start, wctx

pytestmark = pytest.mark.timeout(90)
__all__ = ["cli", "repo", "wctx"]  # the fixtures this module's tests take

# The reviewer: a comment above the first file, one under app.py's `return x`.
REVIEWS = r"""#!/bin/sh
set -e
printf 'Add a test first.\n\n' > "$1.new"
cat "$1" >> "$1.new"
mv "$1.new" "$1"
sed -i 's/^> +    return x$/&\nshould it not be x + 1?\n  (and say why)/' "$1"
echo "$0" >> "$1.who"
"""


def editor(tmp: Path, name: str, body: str) -> str:
    path = tmp / name
    path.write_text(body)
    path.chmod(0o755)
    return str(path)


def rounds(c: Ctx, wid: str) -> list[dict[str, object]]:
    path = c.paths.data / "reviews" / f"{wid}.json"
    return json.loads(path.read_text())["rounds"] if path.exists() else []


def test_comments_written_in_the_editor_are_drafted_and_sent(
    wctx: Ctx, cli: Cli, repo: Path, tmp_path: Path
) -> None:
    start(wctx, tmp_path, "w1", repo)
    reviewer = editor(tmp_path, "reviewer", REVIEWS)
    elsewhere = editor(tmp_path, "elsewhere", "#!/bin/sh\nexit 3\n")
    code, out, err = cli(
        "review", "w1", "--edit", env_extra={"VISUAL": reviewer, "EDITOR": elsewhere}
    )
    assert code == 0, err
    assert "round 1 drafted: 2 comment(s)" in out
    got = rounds(wctx, "w1")[0]["comments"]
    assert {
        "file": "app.py",
        "line": 2,
        "text": "should it not be x + 1?\n  (and say why)",
    }.items() <= got[0].items()
    assert got[1]["file"] == "" and got[1]["text"] == "Add a test first."
    assert not list((wctx.paths.data / "reviews").glob("*.edit.txt"))  # taken: not kept
    code, out, err = cli("review", "w1", "--send")
    assert code == 0 and "round 1 sent to worker: resumed" in out, err
    assert wait(wctx.paths.data, "w1", 30, wctx.clock) == 0
    told = (tmp_path / "resumed.txt").read_text()
    assert (
        "app.py:2: should it not be x + 1?" in told
        and "the whole change: Add a test first." in told
    )


def test_a_file_left_as_it_is_adds_nothing_and_says_so(
    wctx: Ctx, cli: Cli, repo: Path, tmp_path: Path
) -> None:
    start(wctx, tmp_path, "w2", repo)
    for body, said in (
        ("#!/bin/sh\n", "the file was left as it was"),
        ('#!/bin/sh\n: > "$1"\n', "the file was emptied"),
    ):
        code, out, err = cli(
            "review", "w2", "--edit", "--send", env_extra={"EDITOR": editor(tmp_path, "e", body)}
        )
        assert code == 0, err
        assert out.strip() == f"nothing added: {said}"
    assert rounds(wctx, "w2") == []


def test_an_edited_diff_line_is_refused_and_the_file_kept_for_the_next_edit(
    wctx: Ctx, cli: Cli, repo: Path, tmp_path: Path
) -> None:
    start(wctx, tmp_path, "w3", repo)
    breaks = editor(
        tmp_path, "breaks", "#!/bin/sh\nsed -i 's/^> +def f(x):$/> +def f(y):\\nuse y/' \"$1\"\n"
    )
    code, _, err = cli("review", "w3", "--edit", env_extra={"EDITOR": breaks})
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert "the diff's line '> +def f(x):' was edited into '> +def f(y):'" in err
    kept = wctx.paths.data / "reviews" / "w3.edit.txt"
    assert f"kept in {kept}" in err and "use y" in kept.read_text()
    assert rounds(wctx, "w3") == []
    mends = editor(tmp_path, "mends", "#!/bin/sh\nsed -i 's/^> +def f(y):$/> +def f(x):/' \"$1\"\n")
    code, out, err = cli("review", "w3", "--edit", env_extra={"EDITOR": mends})
    assert code == 0 and "round 1 drafted: 1 comment(s)" in out, err
    assert rounds(wctx, "w3")[0]["comments"][0]["text"] == "use y"
    assert not kept.exists()


def test_an_editor_that_is_not_there_or_fails_is_one_line_and_adds_nothing(
    wctx: Ctx, cli: Cli, repo: Path, tmp_path: Path
) -> None:
    start(wctx, tmp_path, "w4", repo)
    cli.env["PATH"] = str(tmp_path / "nothing-here") + ":/usr/bin:/bin"
    for extra, said in (
        (
            {"EDITOR": "no-such-editor --wait"},
            "the editor 'no-such-editor --wait' did not run (not found)",
        ),
        (
            {"VISUAL": editor(tmp_path, "fails", "#!/bin/sh\nexit 4\n")},
            "did not run (it ended with exit 4)",
        ),
    ):
        code, _, err = cli("review", "w4", "--edit", env_extra=extra)
        assert code == 1 and said in err and len(err.strip().splitlines()) == 1, err
    assert rounds(wctx, "w4") == []
    assert not (wctx.paths.data / "reviews" / "w4.edit.txt").exists()
