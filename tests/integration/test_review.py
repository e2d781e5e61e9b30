"""`looop review ID` on a real git worker (real sessions): its commits, the diff against its
base (stat then hunks), its verify and its own report; comments drafted on FILE:LINE or the
whole change and sent as ONE message (typed into a live worker once it is idle at its
prompt, held while it is busy; a worker that ended resumed on its conversation and told
first), each round kept so the next review shows what changed since; every bad input
refused with one line and nothing written."""

from __future__ import annotations

import ast
import contextlib
import json
import os
import select
import shutil
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from looop.core.context import Ctx
from looop.home.sessionfiles import get_light
from looop.sessions.client import wait
from looop.workers.review import review
from looop.workers.verify import record
from tests.helpers import Cli, clean_env
from tests.integration.workerchange import LOOOP, cli, git, repo, start, wctx

pytestmark = pytest.mark.timeout(90)
__all__ = ["cli", "repo", "wctx"]  # the fixtures this module's tests take


def test_review_shows_commits_stat_hunks_verify_and_summary(
    wctx: Ctx, cli: Cli, repo: Path, tmp_path: Path
) -> None:
    start(wctx, tmp_path, "w1", repo)
    record(wctx, "w1", "make test", False, 2, False, "1 failed")
    code, out, err = cli("review", "w1")
    assert code == 0, err
    assert "add app and a README line" in out
    assert "README  +1 -0  (modified)" in out and "app.py  +2 -0  (added)" in out
    assert out.index("app.py  +2") < out.index("+def f(x):")  # the stat, then the hunks
    assert "+committed" in out and " hello" in out
    assert "verify: FAILED (make test)" in out
    assert "I added f; it returns x." in out
    assert "\x1b[" not in out  # not a terminal: plain
    brief = (wctx.paths.prompts / "w1.md").read_text()  # it was told where its summary goes
    assert '"$LOOOP_REPORTS_DIR/w1.md"' in brief and "ask a human to land `looop/w1`" in brief
    code, out, err = cli("review", "w1", "--json")
    assert code == 0, err
    got = json.loads(out)
    assert [c["subject"] for c in got["commits"]] == ["add app and a README line"]
    files = {f["path"]: f for f in got["files"]}
    assert files["app.py"]["status"] == "added" and files["app.py"]["added"] == 2
    assert files["app.py"]["hunks"][0]["lines"] == ["+def f(x):", "+    return x"]
    assert got["verify"]["state"] == "failed" and got["verify"]["exit_code"] == 2
    assert got["tip"] == git(repo, "rev-parse", "looop/w1").strip()
    assert got["base"] == git(repo, "rev-parse", "main").strip()


def test_comments_go_to_a_live_worker_as_one_tell_and_the_round_is_kept(
    wctx: Ctx, cli: Cli, repo: Path, tmp_path: Path
) -> None:
    tree = start(wctx, tmp_path, "w2", repo, tail="exec sleep 60")
    try:
        code, out, err = cli("review", "w2", "--comment", "app.py:2", "return x + 1")
        assert code == 0, err and "drafted" in out
        code, out, err = cli("review", "w2", "--comment-all", "add a test", "--send")
        assert code == 0, err
        assert "round 1 sent" in out and "told w2-" in out
        # journaled as the human's, from the CLI (as the web and watch journal theirs)
        journal = wctx.paths.journal.read_text()
        assert "user (cli): sent review round 1 to w2 (2 comment(s), told w2-" in journal
        code, told, err = cli("told", "w2", env_extra={"LOOOP_SESSION_ID": "w2"})
        assert code == 0, err
        assert told.count("Review of your change (round 1") == 1  # ONE message
        assert "app.py:2: return x + 1" in told and ">    2 |     return x" in told
        assert "the whole change: add a test" in told
        # the worker answers with a commit: the next review shows the round and what followed
        (tree / "app.py").write_text("def f(x):\n    return x + 1\n")
        git(tree, "commit", "-qam", "f adds one")
        code, out, err = cli("review", "w2")
        assert code == 0, err
        assert "round 1 on" in out and "sent (told w2-" in out
        assert "app.py:2: return x + 1" in out
        assert "since round 1: 1 commit(s)" in out and "f adds one" in out
    finally:
        cli("kill", "w2")


def test_comments_to_a_worker_that_ended_resume_it_on_its_conversation(
    wctx: Ctx, cli: Cli, repo: Path, tmp_path: Path
) -> None:
    start(wctx, tmp_path, "w3", repo)
    code, out, err = cli("review", "w3", "--comment", "README:2", "why this line?", "--send")
    assert code == 0, err
    assert "round 1 sent to worker: resumed" in out
    assert wait(wctx.paths.data, "w3", 30, wctx.clock) == 0
    note = (tmp_path / "resumed.txt").read_text()
    assert "README:2: why this line?" in note and ">    2 | committed" in note
    rounds = json.loads((wctx.paths.data / "reviews" / "w3.json").read_text())["rounds"]
    assert [r["sent"] for r in rounds] == ["resumed"]
    assert "user (cli): sent review round 1 to w3 (1 comment(s), resumed)" in (
        wctx.paths.journal.read_text()
    )


def test_bad_comments_are_refused_with_one_line_and_nothing_kept(
    wctx: Ctx, cli: Cli, repo: Path, tmp_path: Path
) -> None:
    start(wctx, tmp_path, "w4", repo)
    cases = [
        (("--comment", "app.py", "x"), "FILE:LINE"),
        (("--comment", "app.py:0", "x"), "FILE:LINE"),
        (("--comment", "nope.py:1", "x"), "nope.py is not part of worker w4's change"),
        (("--comment", "app.py:9", "x"), "app.py has 2 lines"),
        (("--comment", "app.py:1", "  "), "needs some text"),
        (("--send",), "no comments to send to worker w4"),
    ]
    for args, said in cases:
        code, _, err = cli("review", "w4", *args)
        assert code == 1 and said in err, (args, err)
        assert len(err.strip().splitlines()) == 1, err
    assert not (wctx.paths.data / "reviews" / "w4.json").exists()
    code, _, err = cli("review", "nobody")
    assert code == 1 and "no worker nobody — `looop ls` lists them" in err
    git(repo, "update-ref", "-d", "refs/heads/looop/w4")
    code, _, err = cli("review", "w4")
    assert code == 1 and "branch looop/w4 is gone" in err


def _on_a_terminal(args: list[str], env: dict[str, str]) -> None:
    main, child = os.openpty()
    try:
        proc = subprocess.Popen(args, stdin=child, stdout=child, stderr=child, env=env)
        os.close(child)
        assert proc.wait(timeout=60) == 0
    finally:
        os.close(main)


def test_on_a_terminal_the_review_is_coloured_and_paged(
    wctx: Ctx, repo: Path, tmp_path: Path
) -> None:
    start(wctx, tmp_path, "w5", repo)
    paged = tmp_path / "paged.txt"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    less = bin_dir / "less"  # no $PAGER: less, told to show colours (LESS=-R)
    less.write_text(f"#!/bin/sh\necho \"LESS=$LESS\" > '{paged}'\ncat >> '{paged}'\n")
    less.chmod(0o755)
    env = clean_env(tmp_path, wctx.paths.data, TERM="xterm")
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    _on_a_terminal([LOOOP, "review", "w5"], env)
    text = paged.read_text()
    assert text.startswith("LESS=-R\n")
    assert "\x1b[32m+def f(x):" in text and "add app and a README line" in text
    # $PAGER wins; one that is not less gets the same page, plain
    pager = bin_dir / "my-pager"
    pager.write_text(f"#!/bin/sh\ncat > '{paged}'\n")
    pager.chmod(0o755)
    _on_a_terminal([LOOOP, "review", "w5"], {**env, "PAGER": str(pager)})
    text = paged.read_text()
    assert "+def f(x):" in text and "\x1b[" not in text


def test_odd_files_are_reviewed_whole_a_binary_a_latin1_text_and_a_spaced_name(
    wctx: Ctx, cli: Cli, repo: Path, tmp_path: Path
) -> None:
    tree = start(wctx, tmp_path, "w6", repo)
    (tree / "logo.bin").write_bytes(bytes(range(256)))
    (tree / "old notes.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    git(tree, "add", "-A")
    git(tree, "commit", "-qm", "odd files")
    code, out, err = cli("review", "w6", "--json")
    assert code == 0, err
    files = {f["path"]: f for f in json.loads(out)["files"]}
    assert files["logo.bin"]["binary"] is True and files["logo.bin"]["hunks"] == []
    assert files["old notes.txt"]["hunks"][0]["lines"] == ["+caf\ufffd"]
    assert files["app.py"]["added"] == 2  # each file keeps its own stat and hunks
    code, out, err = cli("review", "w6", "--comment", "old notes.txt:1", "say it in UTF-8")
    assert code == 0, err


def test_a_symlink_and_a_mode_change_are_shown_with_the_file(
    wctx: Ctx, cli: Cli, repo: Path, tmp_path: Path
) -> None:
    tree = start(wctx, tmp_path, "w8", repo)
    (tree / "README").chmod(0o755)
    (tree / "link").symlink_to("../../etc/passwd")
    git(tree, "add", "-A")
    git(tree, "commit", "-qm", "a link and an executable README")
    code, out, err = cli("review", "w8")
    assert code == 0, err
    assert "── README (modified) · mode 100644 → 100755" in out
    assert "── link (added) · symlink → ../../etc/passwd" in out
    assert "── app.py (added)\n" in out  # an ordinary file: no note
    code, out, err = cli("review", "w8", "--json")
    files = {f["path"]: f for f in json.loads(out)["files"]}
    assert files["link"]["note"] == "symlink → ../../etc/passwd"
    assert files["README"]["note"] == "mode 100644 → 100755" and files["app.py"]["note"] == ""


def test_a_huge_file_is_cut_as_it_is_read_within_a_memory_bound(
    wctx: Ctx, cli: Cli, repo: Path, tmp_path: Path
) -> None:
    tree = start(wctx, tmp_path, "w9", repo)
    with (tree / "dump.sql").open("w") as f:  # 12 MB of text, one diff git writes whole
        for n in range(120_000):
            f.write(f"INSERT INTO t VALUES ({n:>8}, '{'x' * 70}');\n")
    (tree / "one-line.min.js").write_text("var a=1;" * 100_000)  # 800 KB on one line
    git(tree, "add", "-A")
    git(tree, "commit", "-qm", "a dump")
    tracemalloc.start()
    try:
        r = review(wctx, "w9")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"the review held {peak >> 20} MB"
    files = {f.path: f for f in r.files}
    dump, js = files["dump.sql"], files["one-line.min.js"]
    assert dump.cut and dump.added == 120_000  # its stat whole, its hunks cut
    assert sum(len(ln) for h in dump.hunks for ln in h.lines) <= 256 << 10
    line, eof = js.hunks[0].lines
    assert eof == "\\ No newline at end of file"
    assert line.startswith("+var a=1;") and line.endswith("…") and len(line) < 9000
    assert files["app.py"].hunks[0].lines == ("+def f(x):", "+    return x")
    code, out, err = cli("review", "w9")
    assert code == 0, err
    assert "… (cut: a long diff" in out and len(out) < 1 << 20


# git as the review runs it, but its `git diff` held open once it has written all it says
# until the test opens GATE (at most 120 s): what the review shows before that, it showed
# as git wrote it
HELD = """#!/bin/sh
case " $* " in *" diff "*) {real} "$@"; code=$?; timeout 120 cat '{gate}' >/dev/null; exit $code;;
esac
exec {real} "$@"
"""


def _read_until(proc: subprocess.Popen[bytes], marker: bytes, timeout: float) -> bytes:
    """What `proc` wrote until `marker` (failing at `timeout` or at its end)."""
    assert proc.stdout is not None
    got, deadline, fd = b"", time.monotonic() + timeout, proc.stdout.fileno()
    while marker not in got:
        left = deadline - time.monotonic()
        assert left > 0 and select.select([fd], [], [], left)[0], f"nothing yet: {got[-300:]!r}"
        chunk = os.read(fd, 1 << 16)
        assert chunk, f"it ended first: {got[-300:]!r}"
        got += chunk
    return got


def test_a_long_change_reaches_a_pipe_file_by_file_while_git_still_writes(
    wctx: Ctx, repo: Path, tmp_path: Path
) -> None:
    tree = start(wctx, tmp_path, "w11", repo)
    (tree / "gen").mkdir()
    for n in range(300):
        (tree / "gen" / f"f{n:03}.txt").write_text(f"line {n}\n")
    (tree / "README").unlink()
    (tree / "README").symlink_to("app.py")  # a file made a link: two parts of git's patch
    git(tree, "add", "-A")
    git(tree, "commit", "-qm", "generated")
    gate, bin_dir = tmp_path / "gate", tmp_path / "bin"
    os.mkfifo(gate)
    bin_dir.mkdir()
    (bin_dir / "git").write_text(HELD.format(real=shutil.which("git"), gate=gate))
    (bin_dir / "git").chmod(0o755)
    env = clean_env(tmp_path, wctx.paths.data)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    proc = subprocess.Popen(
        [LOOOP, "review", "w11"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    try:
        first = _read_until(proc, b"\n\xe2\x94\x80\xe2\x94\x80 ", 60).decode()  # a file's header
        assert proc.poll() is None  # its git has not ended: the review still reads it
        assert "files (302, +303 -1):" in first and "gen/f299.txt  +1 -0  (added)" in first
        os.close(os.open(gate, os.O_WRONLY))  # git ends
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        with contextlib.suppress(OSError):  # a git still held let go
            os.close(os.open(gate, os.O_WRONLY | os.O_NONBLOCK))
    assert proc.returncode == 0, err
    out = first + rest.decode()
    assert "── README (modified) · symlink → app.py" in out
    assert "── app.py (added)\n@@ -0,0 +1,2 @@\n+def f(x):" in out  # its own hunks, not README's
    assert out.count("\n── gen/") == 300 and out.rstrip().endswith("+line 299")


# git as the review runs it, its `git diff` saying much on stderr first (more than a pipe
# holds), then failing or not as FAIL says
TALKS = """#!/bin/sh
case " $* " in *" diff "*)
  head -c 300000 /dev/zero | tr '\\0' 'w' >&2; echo >&2
  if [ -e '{fail}' ]; then echo "fatal: the pack is gone" >&2; exit 128; fi;;
esac
exec {real} "$@"
"""


def test_what_git_says_on_stderr_never_stalls_a_review_and_its_failure_is_one_line(
    wctx: Ctx, repo: Path, tmp_path: Path
) -> None:
    tree = start(wctx, tmp_path, "w12", repo)
    git(tree, "commit", "-q", "--allow-empty", "-m", "nothing")
    fail, bin_dir = tmp_path / "fail", tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "git").write_text(TALKS.format(real=shutil.which("git"), fail=fail))
    (bin_dir / "git").chmod(0o755)
    env = clean_env(tmp_path, wctx.paths.data)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    argv = [LOOOP, "review", "w12"]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "app.py" in done.stdout and "w" * 100 not in done.stdout + done.stderr
    fail.touch()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().endswith("git diff in " + str(repo) + ": fatal: the pack is gone")
    assert len(done.stderr.strip().splitlines()) == 1


# once started it asks for a reply (at once, or only once `go` exists: busy till then) and
# records the one line it read
ASKS = """{wait}printf 'your reply? '
IFS= read -r line
printf '%s' "$line" > '{got}'
exec tail -f /dev/null
"""


def _asking(c: Ctx, wid: str) -> None:
    """Until its supervisor saw it quiet at its prompt (status.json's `prompt`)."""
    deadline = time.monotonic() + 30
    while not get_light(str(c.paths.data), wid).get("prompt"):
        assert time.monotonic() < deadline, "the worker never showed its prompt"
        time.sleep(0.05)


def _read_by(got: Path) -> str:
    deadline = time.monotonic() + 30
    while not got.exists():
        assert time.monotonic() < deadline, "the worker never read a line"
        time.sleep(0.05)
    return got.read_text()


def test_a_round_to_a_worker_idle_at_its_prompt_is_typed_in_as_one_line(
    wctx: Ctx, cli: Cli, repo: Path, tmp_path: Path
) -> None:
    got = tmp_path / "got.txt"
    start(wctx, tmp_path, "w7", repo, tail=ASKS.format(wait="", got=got))
    try:
        _asking(wctx, "w7")
        code, out, err = cli(
            "review", "w7", "--comment", "app.py:2", "return x + 1",
            "--comment-all", "add a test\nand a doc", "--send",
        )  # fmt: skip
        assert code == 0, err
        assert "round 1 sent to worker: told w7-1, delivered" in out
        line = _read_by(got)
        assert line.startswith("Review of your change (round 1")
        assert "app.py:2: return x + 1" in line and "the whole change: add a test and a doc" in line
        code, out, err = cli("review", "w7", "--json")
        assert code == 0, err
        assert [r["sent"] for r in json.loads(out)["rounds"]] == ["told w7-1, delivered"]
        code, told, err = cli("told", "w7", env_extra={"LOOOP_SESSION_ID": "w7"})
        assert code == 0, err
        assert "Review of your change" not in told  # typed in once, never told again
    finally:
        cli("kill", "w7")


def test_a_round_to_a_busy_worker_waits_and_the_beat_types_it_once_idle(
    wctx: Ctx, cli: Cli, repo: Path, tmp_path: Path
) -> None:
    got, go = tmp_path / "got.txt", tmp_path / "go"
    busy = f"while [ ! -e '{go}' ]; do sleep 0.02; done\n"
    start(wctx, tmp_path, "w8", repo, tail=ASKS.format(wait=busy, got=got))
    try:
        code, out, err = cli("review", "w8", "--comment-all", "add a test", "--send")
        assert code == 0, err
        assert "told w8-1, waiting for the worker to be idle" in out
        code, out, err = cli("review", "w8")
        assert "sent (told w8-1, waiting for the worker to be idle)" in out
        assert not got.exists()
        go.touch()
        _asking(wctx, "w8")
        cli("tick")  # the beat: it looks at every screen, then types what waits
        assert "the whole change: add a test" in _read_by(got)
        code, out, err = cli("review", "w8")
        assert "sent (told w8-1, delivered)" in out
        cli("tick")
        typed = wctx.paths.events.read_text().count('"review_typed"')
        assert typed == 1  # once: the next beat finds nothing waiting
    finally:
        cli("kill", "w8")


# `looop ARGS` in a fresh interpreter, which then says every module it had loaded
LOADED = """
import sys
from looop.verbs.console import run
try:
    run()
except SystemExit as e:
    code = e.code
sys.stdout.flush()
sys.stderr.write("\\nMODULES " + repr(sorted(sys.modules)) + "\\n")
"""


def _loaded(env: dict[str, str], *args: str) -> tuple[str, set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", LOADED, *args], env=env, capture_output=True, text=True, timeout=60
    )
    said, _, mods = done.stderr.rpartition("\nMODULES ")
    assert mods, done.stderr
    return done.stdout + said, set(ast.literal_eval(mods))


def test_a_review_loads_no_landing_and_a_landing_no_resume(
    wctx: Ctx, repo: Path, tmp_path: Path
) -> None:
    """Each verb pays for its own path only: `looop review` reads the change without the
    landing's machinery (act/landing.py, its pull requests) or the decision grammar
    (act/decision.py), `looop land` lands it without the resume of a worker (workers/resume.py,
    launch, its sandbox) that a round's send needs, or a decision's reach into sessions
    (act/reach.py, the start records it reads)."""
    start(wctx, tmp_path, "w1", repo)
    env = clean_env(tmp_path, wctx.paths.data)
    out, mods = _loaded(env, "review", "w1")
    assert "add app and a README line" in out and "+def f(x):" in out
    assert "looop.cli.review" in mods
    assert sorted(m for m in mods if m.startswith(("looop.act.land", "looop.cli.land"))) == [
        "looop.act.landaway",
        "looop.act.landlocal",
    ]
    assert "looop.act.decision" not in mods  # a worker's backend, not what a decision may say
    out, mods = _loaded(env, "land", "w1", "--ff")
    assert "landed worker w1: looop/w1 fast-forwarded into main" in out
    assert git(repo, "log", "-1", "--format=%s", "main").strip() == "add app and a README line"
    heavy = ("looop.workers.resume", "looop.workers.launch", "looop.sandbox", "looop.cli.review")
    heavy += ("looop.act.reach", "looop.workers.startrecord")
    assert sorted(m for m in mods if m.startswith(heavy)) == []
