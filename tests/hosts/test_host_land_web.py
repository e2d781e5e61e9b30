"""A worker on an SSH host reviewed from the web page's API and from `looop mcp` as from the
CLI (tests/hosts/test_host_land.py): a comment drafted on one of its lines (read on the host),
the round sent (the ended worker resumed there with it), and — from the web only, a human's
action — its change landed in the host's repository, journaled here as the web's. MCP drafts
and sends, and has no tool that lands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from tests.helpers import wait_until
from tests.hosts.conftest import LOOOP, Home, Host
from tests.hosts.repos import host_repo
from tests.hosts.test_host_land import WORK_ONE, _host, _journal, _put, _rev, _settled
from tests.hosts.test_sandboxed_host import _second_home, _wait_gone
from tests.hosts.util import home_env, looop
from tests.hosts.webutil import serve


def _ended_worker(home: Home, tmp_path: Path, wid: str) -> tuple[Path, Path, Path, Host]:
    """A home of its own whose worker `wid` made one commit in repo app on h1 and ended:
    (data dir, the host's repo, the file its resume writes what it was told into, h1)."""
    h1 = _host(home, "h1")
    app = host_repo(h1, "app")
    script = _put(h1, "land-one.sh", WORK_ONE)
    told = h1.home / f"told-{wid}.txt"
    told.unlink(missing_ok=True)
    runner = {
        "worker": f"bash {script} # {{{{prompt_file}}}} {{{{session_id}}}}",
        "resume": f"cat {{{{prompt_file}}}} >> {told} # {{{{session_id}}}}",
    }
    data = _second_home(tmp_path, home.lab, [h1], "off", runners={"sh": runner})
    start = looop(data, "worker", "start", wid, "x", "--host", "h1", "--repo", str(app))
    assert start.returncode == 0, start.stderr
    _wait_gone(data, wid)
    return data, app, told, h1


def _one_line(got: tuple[int, Any], status: int, said: str) -> None:
    code, body = got
    assert code == status, (code, body)
    err = body["error"]
    assert said in err and "\n" not in err and "Traceback" not in err, err


@pytest.mark.timeout(240)
def test_the_web_api_comments_sends_and_lands_a_worker_on_a_host(
    home: Home, tmp_path: Path
) -> None:
    data, app, told, _ = _ended_worker(home, tmp_path, "hw1")
    tip, main = _rev(app, "looop/hw1"), _rev(app, "main")
    with serve(data) as web:
        code, got = web.call("GET", "/workers/hw1/review")
        assert code == 200 and got["tip"] == tip, got
        # bad asks, one line each and nothing drafted: a file outside the change (the host
        # says so), a line that is no number
        outside = {"text": "t", "file": "nope.txt", "line": 1}
        _one_line(
            web.call("POST", "/workers/hw1/review/comments", outside),
            400,
            "nope.txt is not part of worker hw1's change",
        )
        _one_line(
            web.call("POST", "/workers/hw1/review/comments", {"text": "t", "file": "README"}),
            400,
            "field 'line' must be a line number",
        )
        body = {"text": "say who you are", "file": "README", "line": 2}
        code, got = web.call("POST", "/workers/hw1/review/comments", body)
        assert code == 200 and got == {"ok": True, "round": 1, "comments": 1}, got
        code, got = web.call("POST", "/workers/hw1/review/comments", {"text": "add a test"})
        assert code == 200 and got["comments"] == 2, got

        code, got = web.call("POST", "/workers/hw1/review/send", {})
        assert code == 200 and got["how"].startswith("resumed"), got
        wait_until(lambda: told.exists() and "add a test" in told.read_text(), 30, "resumed")
        message = told.read_text()
        assert "README:2: say who you are" in message and ">    2 | by the worker" in message
        assert "web: sent review round 1 to hw1 (2 comment(s)" in _journal(data)
        _one_line(web.call("POST", "/workers/hw1/review/send", {}), 409, "no comments to send")

        squash = {"mode": "squash", "at": tip}
        _one_line(web.call("POST", "/workers/hw1/land", squash), 400, "'mode'")
        assert _rev(app, "main") == main
        code, got = web.call("POST", "/workers/hw1/land", {"mode": "ff", "at": tip})
        assert code == 200 and got["commit"] == tip and got["into"] == "main", got
        assert _rev(app, "main") == tip  # the host's repository moved
        line = _journal(data).splitlines()[-1]
        assert "user (web): landed worker hw1 on host h1:" in line and tip[:12] in line, line
        _settled(data)
        _one_line(
            web.call("POST", "/workers/hw1/land", {"mode": "ff", "at": tip}),
            409,
            "already holds worker hw1",
        )


def _mcp(data: Path, body: Any) -> None:
    args = ["mcp", "--allow-actions"]
    params = StdioServerParameters(
        command=str(LOOOP), args=args, env=home_env(data), cwd=str(data.parent)
    )

    async def main() -> None:
        with anyio.fail_after(90), (data.parent / "mcp.err").open("w") as errlog:
            async with (
                stdio_client(params, errlog=errlog) as (read, write),
                ClientSession(read, write) as s,
            ):
                await s.initialize()
                await body(s)

    anyio.run(main)


def _text(result: Any) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


@pytest.mark.timeout(240)
def test_mcp_comments_and_sends_to_a_worker_on_a_host_and_never_lands(
    home: Home, tmp_path: Path
) -> None:
    data, app, told, _ = _ended_worker(home, tmp_path, "hm1")
    tip, main = _rev(app, "looop/hm1"), _rev(app, "main")

    async def body(s: ClientSession) -> None:
        names = {t.name for t in (await s.list_tools()).tools}
        assert {"review_comment", "review_send"} <= names
        assert not {n for n in names if "land" in n or "merge" in n}  # a human's action only
        got = json.loads((await s.read_resource("looop://workers/hm1/review")).contents[0].text)
        assert got["tip"] == tip, got
        bad = await s.call_tool(
            "review_comment", {"id": "hm1", "text": "t", "file": "nope.txt", "line": 1}
        )
        assert bad.is_error and "nope.txt is not part of worker hm1's change" in _text(bad)
        args = {"id": "hm1", "text": "say who you are", "file": "README", "line": 2}
        done = await s.call_tool("review_comment", args)
        assert done.structured_content == {"ok": True, "round": 1, "comments": 1}, _text(done)
        sent = await s.call_tool("review_send", {"id": "hm1"})
        assert not sent.is_error and sent.structured_content["how"].startswith("resumed")

    _mcp(data, body)
    wait_until(lambda: told.exists() and "say who you are" in told.read_text(), 30, "resumed")
    assert "README:2: say who you are" in told.read_text()
    assert "mcp: sent review round 1 to hm1 (1 comment(s)" in _journal(data)
    assert _rev(app, "main") == main  # nothing landed
