"""`looop land` run inside a worker's session, on real git: refused (one line, nothing
landed) unless a human typed it at the session's prompt with no agent typing into the session
since; when it lands, the journal names the session it came from (issue 64, item 5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from looop.act import reach
from looop.core.context import Ctx
from tests.helpers import Cli
from tests.integration.workerchange import (
    cli,
    head,
    journal,
    refused,
    repo,
    reviewed,
    start,
    wctx,
)

pytestmark = pytest.mark.timeout(90)
__all__ = ["cli", "repo", "wctx"]  # the fixtures this module's tests take


def test_land_in_a_session_lands_only_what_a_human_typed_and_names_it(
    wctx: Ctx, cli: Cli, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start(wctx, tmp_path, "w1", repo)
    base, tip = head(repo), head(repo, "looop/w1")
    reviewed(cli, "w1")  # the human's review names the tip a landing approves
    cli.env["LOOOP_SESSION_ID"] = "w1"
    # run by an agent's tool: its stdin is no terminal
    assert "no one typed it at its prompt" in refused(cli, "w1")
    # typed at the prompt, but an agent (MCP's send_line) typed into the session last
    monkeypatch.setattr("looop.cli.land.at_prompt", lambda: True)
    reach.note_typist(wctx, "w1", "mcp")
    assert "an agent (mcp) typed into it last" in refused(cli, "w1")
    assert head(repo) == base and "landed" not in journal(wctx)
    reach.note_typist(wctx, "w1", None)  # a human typed since (`looop send`, the web, attach)
    code, _, err = cli("land", "w1")
    assert code == 0, err
    assert head(repo) == tip
    line = journal(wctx).splitlines()[-1]
    assert "user (cli in worker w1's session): landed worker w1" in line, line
