"""MCP over streamable HTTP on a real `looop web`: the SDK's own HTTP client, behind the web
token; its tools act as the API does, journaled as mcp; no token, no MCP."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.web.test_cli_web import _start, _stop

pytestmark = pytest.mark.timeout(90)
CALL_S = 30


def _base(url: str) -> tuple[str, str]:
    u = urlsplit(url)
    return f"{u.scheme}://{u.netloc}/mcp", parse_qs(u.query)["token"][0]


def _wanted(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"web": {"mcp": True}}))


def test_the_sdk_client_lists_reads_and_acts_over_http(tmp_path: Path) -> None:
    _wanted(tmp_path)
    p, url = _start(tmp_path)
    endpoint, token = _base(url)

    async def main() -> None:
        with anyio.fail_after(CALL_S):
            async with (
                httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http,
                streamable_http_client(endpoint, http_client=http) as (read, write),
                ClientSession(read, write) as s,
            ):
                await s.initialize()
                names = {t.name for t in (await s.list_tools()).tools}
                assert {"answer_ask", "write_goal", "pause"} <= names
                state = json.loads((await s.read_resource("looop://state")).contents[0].text)
                assert state["data_dir"] == str(tmp_path / "data")
                got = await s.call_tool("write_goal", {"id": "g1", "body": "over http"})
                assert not got.is_error, got.content
                bad = await s.call_tool("write_goal", {"id": "../x", "body": "y"})
                assert bad.is_error

    try:
        anyio.run(main)
    finally:
        _stop(p)
    assert (tmp_path / "data" / "goals" / "g1.md").read_text().strip() == "over http"
    assert "mcp: write-goal g1" in (tmp_path / "data" / "journal.md").read_text()


def test_no_token_no_mcp(tmp_path: Path) -> None:
    _wanted(tmp_path)
    p, url = _start(tmp_path)
    endpoint, _ = _base(url)
    try:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        r = httpx2.post(endpoint, json=body, headers={"Accept": "application/json"}, timeout=10)
        assert r.status_code == 401
        r = httpx2.post(
            endpoint,
            json=body,
            headers={"Accept": "application/json", "Authorization": "Bearer nope"},
            timeout=10,
        )
        assert r.status_code == 401
    finally:
        _stop(p)


def test_mcp_is_served_only_when_the_config_asks(tmp_path: Path) -> None:
    p, url = _start(tmp_path)
    endpoint, token = _base(url)
    try:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        h = {"Accept": "application/json", "Authorization": f"Bearer {token}"}
        assert httpx2.post(endpoint, json=body, headers=h, timeout=10).status_code == 404
    finally:
        _stop(p)
