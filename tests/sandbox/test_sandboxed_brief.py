"""The brief a sandboxed worker gets reads true inside (the real srt and bubblewrap): every
command it gives — each backticked `"$LOOOP_BIN" …`, `answer=$(…)` and `git …` span, its
placeholders filled in — is run from inside a sandboxed worker and works (the verbs that reach
looop through the box's door among them), and the worker ends itself the way the brief says
(its own kill, last)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from looop.home.paths import Paths
from tests.sandbox.test_sandboxed_worker import Box
from tests.sandbox.test_sandboxed_worktree import git

pytestmark = pytest.mark.timeout(120)

# a stand-in for each placeholder the brief's commands hold
FILL = {
    "<one clear question>": "ship it?",
    "<name>": "lease-1",
    "<usd>": "0.01",
    "<dir>": "clone",
    "<what you need>": "a key",
}
COMMAND = re.compile(r'^(?:"\$LOOOP_BIN" |answer=\$\(|git )')


def commands(brief: str, repo: Path) -> list[str]:
    """The brief's commands, in its order, ready to run."""
    out = []
    for span in re.findall(r"`([^`\n]+)`", brief.replace("\n  ", " ")):
        if not COMMAND.match(span):
            continue
        for hole, value in {**FILL, "<repo>": shlex.quote(str(repo))}.items():
            span = span.replace(hole, value)
        assert "<" not in span, f"a placeholder this test cannot fill: {span}"
        out.append(span)
    return out


WAIT_FOR_GO = 'read -r go\nbash "$HOME/brief.sh"\nsleep 60\n'  # ended by its own kill


@pytest.mark.parametrize("with_repo", [False, True], ids=["workspace", "worktree"])
def test_every_command_of_a_sandboxed_brief_works_inside(
    tmp_path: Path, srt: Path, with_repo: bool
) -> None:
    box = Box(tmp_path, srt, "on")
    main = tmp_path / "main"
    main.mkdir()
    git(main, "init", "-q", "-b", "main")
    (main / "README").write_text("hello\n")
    git(main, "add", "README")
    git(main, "-c", "user.name=T", "-c", "user.email=t@t", "commit", "-qm", "s")
    box.start("w1", WAIT_FOR_GO, *(("--repo", str(main)) if with_repo else ()))
    brief = (box.data / "prompts" / "w1.md").read_text()
    # nothing the sandbox refuses is offered: a worktree in /tmp, reports/ in the data dir
    assert "worktree add" not in brief and "`reports/`" not in brief
    cmds = commands(brief, main)
    verbs = {c.split('"$LOOOP_BIN" ')[1].split()[0] for c in cmds if '"$LOOOP_BIN" ' in c}
    assert verbs == {"ask", "told", "claim", "unclaim", "cost", "flag", "kill"}, cmds
    end = '"$LOOOP_BIN" kill w1'
    assert cmds[-1] == end  # its own end, run last of all
    cmds = cmds[:-1]
    assert any(c.startswith("git ") for c in cmds) != with_repo  # a worktree needs no clone

    lines = ['r="$LOOOP_REPORTS_DIR/brief-$LOOOP_SESSION_ID"']
    for i, cmd in enumerate(cmds):
        lines.append(
            f'if {cmd} >/dev/null 2>&1; then echo "{i}=ok"; else echo "{i}=no"; fi >> "$r"'
        )
    lines.append('echo "answer=$answer" >> "$r"')
    lines.append(end)
    (box.home / "brief.sh").write_text("\n".join(lines) + "\n")
    assert box.looop("send", "w1", "go").returncode == 0

    asks = box.data / "asks" / "w1-1.json"
    for _ in range(600):
        if asks.exists():
            break
        box.looop("asks")  # one CLI round trip between looks, not a sleep
    answered = box.looop("answer", "w1-1", "yes")
    assert answered.returncode == 0, answered.stderr
    # the brief's last word: it ends its own session, through its door
    box.wait("w1")
    rows = {r["id"]: r for r in json.loads(box.looop("ls", "-a", "--json").stdout)}
    assert rows["w1"]["state"] == "killed", rows["w1"]
    got = dict(
        line.partition("=")[::2]
        for line in (Paths.at(box.data).rooms / "w1" / "reports" / "brief-w1")
        .read_text()
        .splitlines()
    )
    assert got.pop("answer") == "yes"
    assert got == {str(i): "ok" for i in range(len(cmds))}, dict(
        zip(cmds, got.values(), strict=False)
    )
    if not with_repo:  # the clone the brief asks for is in the workspace, with the history
        clone = Paths.at(box.data).rooms / "w1" / "work" / "clone"
        assert git(clone, "log", "--oneline").strip().endswith("s")
        # and srt, started in the data dir, left no placeholder in the workspace
        assert sorted(p.name for p in clone.parent.iterdir()) == ["clone"]
