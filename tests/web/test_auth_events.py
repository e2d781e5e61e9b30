"""The web room's pieces on their own: the token file, the Host and Origin checks, and the
event hub's tailing and its bound on a slow client."""

from __future__ import annotations

import asyncio
import json
import os
import stat

import pytest

from looop.core.context import Ctx
from looop.home.paths import Paths
from looop.web.auth import Guard, load_or_make_token, token_ok, token_path
from looop.web.streams import Hub, Sent


def test_token_is_kept_0600_and_reused_until_renewed(paths: Paths) -> None:
    first = load_or_make_token(paths)
    assert len(first) >= 40
    assert stat.S_IMODE(os.stat(token_path(paths)).st_mode) == 0o600
    assert load_or_make_token(paths) == first  # a restart keeps the links a phone holds
    os.chmod(token_path(paths), 0o644)
    assert load_or_make_token(paths) == first
    assert stat.S_IMODE(os.stat(token_path(paths)).st_mode) == 0o600
    fresh = load_or_make_token(paths, fresh=True)
    assert fresh != first and load_or_make_token(paths) == fresh


def test_a_garbled_token_file_is_replaced(paths: Paths) -> None:
    paths.lock_dir.mkdir(parents=True)
    token_path(paths).write_text("short\n")
    assert load_or_make_token(paths) != "short"


def test_token_compare() -> None:
    assert token_ok("abc", "abc")
    assert not token_ok("abd", "abc") and not token_ok("", "abc") and not token_ok(None, "abc")
    assert not token_ok("é", "abc")


def test_host_check_refuses_rebound_names() -> None:
    g = Guard(token="x", bind="127.0.0.1", port=8765)
    for ok in ("127.0.0.1:8765", "localhost:8765", "[::1]:8765", "LOCALHOST"):
        assert g.host_ok(ok), ok
    for bad in ("evil.example:8765", "127.0.0.1.evil.example", "", None, "10.0.0.5:8765"):
        assert not g.host_ok(bad), bad
    wide = Guard(token="x", bind="0.0.0.0", port=8765, public=("loop.example.net",))
    for ok in ("10.0.0.5:8765", "loop.example.net", "127.0.0.1:8765"):
        assert wide.host_ok(ok), ok
    assert not wide.host_ok("evil.example")


def test_origin_must_be_this_server() -> None:
    g = Guard(token="x", bind="127.0.0.1", port=8765, public=("loop.example.net",))
    assert g.origin_ok("http://127.0.0.1:8765", "127.0.0.1:8765")
    assert g.origin_ok("https://loop.example.net", "127.0.0.1:8765")  # behind a TLS proxy
    for bad in ("http://127.0.0.1:9999", "http://evil.example", "null", "", "file://x", None):
        assert not g.origin_ok(bad, "127.0.0.1:8765"), bad


def _append(path: os.PathLike[str], line: str) -> None:
    with open(path, "a") as f:
        f.write(line + "\n")


@pytest.mark.timeout(20)
def test_hub_sends_new_events_and_journal_lines(ctx: Ctx) -> None:
    _append(ctx.paths.events, json.dumps({"event": "old"}))  # before the client: not replayed

    async def go() -> list[dict[str, object]]:
        hub = Hub(ctx, poll_s=0.01)
        q = hub.subscribe()
        await asyncio.sleep(0.05)
        _append(ctx.paths.events, json.dumps({"event": "tick_start", "kind": "x"}))
        _append(ctx.paths.events, "{torn")
        _append(ctx.paths.journal, "- 2026-06-21 10:00 web: answered w1-1: yes")
        got = [json.loads(str((await asyncio.wait_for(q.get(), 5) or ("",))[0])) for _ in range(2)]
        await hub.close()
        return got

    got = asyncio.run(go())
    assert got[0] == {"kind": "event", "data": {"event": "tick_start", "kind": "x"}}
    assert got[1]["kind"] == "journal"
    assert got[1]["data"] == {  # type: ignore[comparison-overlap]
        "at": "2026-06-21 10:00",
        "text": "web: answered w1-1: yes",
        "line": "- 2026-06-21 10:00 web: answered w1-1: yes",
    }


@pytest.mark.timeout(20)
def test_a_client_reconnecting_with_its_last_event_id_gets_what_it_missed(ctx: Ctx) -> None:
    async def next_of(q: asyncio.Queue[Sent | None]) -> Sent:
        got = await asyncio.wait_for(q.get(), 5)
        assert got is not None
        return got

    async def go() -> tuple[list[Sent], list[Sent], str]:
        hub = Hub(ctx, poll_s=0.01)
        q = hub.subscribe()
        await asyncio.sleep(0.05)
        _append(ctx.paths.events, json.dumps({"event": "first"}))
        first = await next_of(q)
        _append(ctx.paths.events, json.dumps({"event": "missed"}))
        _append(ctx.paths.journal, "- 2026-06-21 10:00 web: missed too")
        while (await next_of(q))[1] is None:
            pass  # the look's last message carries its id
        assert first[1] is not None
        back = hub.subscribe(first[1])
        replayed = [back.get_nowait() for _ in range(back.qsize())]
        garbled = hub.subscribe("<script>").qsize()
        await hub.close()
        return [first], replayed, str(garbled)

    (first,), replayed, garbled = asyncio.run(go())
    assert [json.loads(m)["data"].get("event", "journal") for m, _ in replayed] == [
        "missed",
        "journal",
    ]
    assert replayed[0][1] is None and replayed[1][1] not in (None, first[1])
    assert garbled == "0"


@pytest.mark.timeout(20)
def test_a_slow_client_is_dropped_not_buffered(ctx: Ctx) -> None:
    async def go() -> tuple[int, object, int]:
        hub = Hub(ctx, poll_s=0.01, queue_max=4)
        slow, fast = hub.subscribe(), hub.subscribe()
        seen = 0
        for n in range(10):
            hub.publish(f"m{n}")
            while not fast.empty():
                fast.get_nowait()
                seen += 1
        end = slow.get_nowait()
        left = len(hub.clients)
        await hub.close()
        return seen, end, left

    seen, end, left = asyncio.run(go())
    assert seen == 10  # the reader that keeps up gets every line
    assert end is None  # the slow one's stream is ended, its queue emptied
    assert left == 1


def test_branch_is_read_from_the_sessions_checkout(tmp_path: os.PathLike[str]) -> None:
    from pathlib import Path

    from looop.web.reads import _branch

    root = Path(tmp_path)
    repo = root / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "src").mkdir()
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/fix/flaky-test\n")
    assert _branch(str(repo / "src")) == "fix/flaky-test"  # found from a subdirectory
    wt = root / "wt"
    wt.mkdir()
    (root / "gitdirs" / "wt").mkdir(parents=True)
    (root / "gitdirs" / "wt" / "HEAD").write_text("0123456789abcdef0123\n")
    (wt / ".git").write_text(f"gitdir: {root / 'gitdirs' / 'wt'}\n")
    assert _branch(str(wt)) == "0123456789ab"  # a worktree on a detached head
    assert _branch(str(root / "nowhere")) is None


def test_workers_sharing_a_folder_have_its_branch_read_once(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 300 workers in one checkout, reading its .git/HEAD (and each meta.json again) per
    row was a quarter of the fleet's read: a folder is read once per read of the fleet."""
    from looop.web import reads

    repo = ctx.paths.data.parent / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/shared\n")
    for sid in ("w1", "w2", "w3"):
        sdir = ctx.paths.sessions / sid
        sdir.mkdir(parents=True)
        meta = {"v": 1, "id": sid, "cmd": ["true"], "started_at": "2026-01-01T00:00:00.000Z"}
        (sdir / "meta.json").write_text(json.dumps(meta | {"cwd": str(repo)}))
        (sdir / "status.json").write_text(json.dumps({"state": "exited", "exit_code": 0}))
    read = reads._branch
    calls: list[object] = []
    monkeypatch.setattr(reads, "_branch", lambda *a: calls.append(a) or read(*a))
    rows = reads.sessions(ctx, True)
    assert {r["id"]: r["branch"] for r in rows if r["id"] != "pulse"} == dict.fromkeys(
        ("w1", "w2", "w3"), "shared"
    )
    assert len(calls) <= 2  # the shared folder once (and the pulse's, were it there)
