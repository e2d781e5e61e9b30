"""A worker's review over `looop mcp` (a real process, the SDK's own client), on real git and
a real worker session: the resource `looop://workers/{id}/review` is `looop review --json`;
review_comment drafts (a line, the whole change), review_send delivers the round (the ended
worker resumed with it), journaled as mcp; a bad comment is one line and writes nothing; a
read-only server refuses both; and no tool lands a change (a human's action)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp.client.session import ClientSession

from looop.core.context import Ctx
from looop.sessions.client import wait
from tests.integration.test_mcp import drive, text
from tests.integration.workerchange import git, repo, start, wctx

pytestmark = [pytest.mark.process, pytest.mark.timeout(90)]
__all__ = ["repo", "wctx"]  # the fixtures this module's tests take


def rounds(c: Ctx, wid: str) -> list[dict[str, Any]]:
    path = c.paths.data / "reviews" / f"{wid}.json"
    return json.loads(path.read_text())["rounds"] if path.exists() else []


def test_review_read_commented_and_sent_over_mcp(wctx: Ctx, repo: Path, tmp_path: Path) -> None:
    start(wctx, tmp_path, "w1", repo)
    tip = git(repo, "rev-parse", "looop/w1").strip()

    async def body(s: ClientSession) -> None:
        names = {t.name for t in (await s.list_tools()).tools}
        assert {"review_comment", "review_send"} <= names
        assert not {n for n in names if "land" in n or "merge" in n}  # a human's action only
        got = json.loads((await s.read_resource("looop://workers/w1/review")).contents[0].text)
        assert got["tip"] == tip and {f["path"] for f in got["files"]} == {"README", "app.py"}

        bad = await s.call_tool("review_comment", {"id": "w1", "text": "t", "file": "nope.py",
                                                   "line": 1})  # fmt: skip
        assert bad.is_error and "nope.py is not part of worker w1's change" in text(bad)
        assert "\n" not in text(bad).strip() and rounds(wctx, "w1") == []
        args = {"id": "w1", "text": "return x + 1", "file": "app.py", "line": 2}
        done = await s.call_tool("review_comment", args)
        assert not done.is_error, text(done)
        done = await s.call_tool("review_comment", {"id": "w1", "text": "add a test"})
        assert done.structured_content == {"ok": True, "round": 1, "comments": 2}
        sent = await s.call_tool("review_send", {"id": "w1"})
        assert not sent.is_error and sent.structured_content["how"].startswith("resumed")
        again = await s.call_tool("review_send", {"id": "w1"})
        assert again.is_error and "no comments to send to worker w1" in text(again)
        with pytest.raises(Exception, match="no worker 'nobody'"):  # the SDK's error, one line
            await s.read_resource("looop://workers/nobody/review")

    drive(wctx, body, "--allow-actions")
    assert wait(wctx.paths.data, "w1", 30, wctx.clock) == 0  # the resumed run writes it, then ends
    told = (tmp_path / "resumed.txt").read_text()
    assert "app.py:2: return x + 1" in told and "the whole change: add a test" in told
    assert "mcp: sent review round 1 to w1 (2 comment(s)" in wctx.paths.journal.read_text()
    assert git(repo, "rev-parse", "main").strip() != tip  # nothing landed


def test_a_read_only_server_reads_the_review_and_refuses_to_comment(
    wctx: Ctx, repo: Path, tmp_path: Path
) -> None:
    start(wctx, tmp_path, "w2", repo)

    async def body(s: ClientSession) -> None:
        got = json.loads((await s.read_resource("looop://workers/w2/review")).contents[0].text)
        assert got["wid"] == "w2"
        done = await s.call_tool("review_comment", {"id": "w2", "text": "hi"})
        assert done.is_error and "read-only" in text(done)

    drive(wctx, body)
    assert rounds(wctx, "w2") == []
