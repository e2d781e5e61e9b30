"""Numbers a host answers with are outside input: `looop ls` reads an SSH host's `ls` answer
through the real parsing code (the link's JSON, the rows, the table and --json) and a crafted
number — 1e308, NaN, ±Infinity, a negative or an enormous one, a string — is shown as
unknown, never a traceback."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from looop.core.context import Ctx
from looop.remote import hosts as reg
from looop.remote.fleet import remote_rows
from looop.remote.ssh import link
from looop.remote.ssh.backend import SshBackend
from looop.sessions.state import SessionError
from looop.views.fleet import fleet_json, fleet_rows_at, fleet_table

CRAFTED: list[Any] = [1e308, -1e308, "NaN", "Infinity", "-Infinity", -1, 10**200, "soon", None]


def _answer(value: Any) -> bytes:
    """The host's `ls` answer as its satellite writes it, with `value` in every number."""
    row = {
        "id": "w1",
        "alive": True,
        "state": "running",
        "quiet_s": value,
        "exit_code": value,
        "started_at": value,
        "label": "x",
        "note": None,
    }
    text = json.dumps({"workers": [row]})
    if isinstance(value, str) and value.lstrip("-") in ("NaN", "Infinity"):
        text = text.replace(f'"{value}"', value)  # JSON as Python's parser takes it
    return text.encode()


@pytest.mark.parametrize("value", CRAFTED, ids=lambda v: repr(v)[:12])
def test_ls_shows_a_crafted_host_number_as_unknown(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch, value: Any
) -> None:
    data = ctx.paths.data
    reg.add(data, "h1", "ssh://u@h1.example", 1)
    reg.write_record(data, "w1", "h1", started_at="2026-01-01T00:00:00Z")
    monkeypatch.setattr(link, "_answers", lambda _path: True)  # the master is up

    def ssh(argv: list[str], **_kw: Any) -> subprocess.CompletedProcess[bytes]:
        assert argv[-1].endswith(" ls"), argv  # the satellite verb, as one shell word
        return subprocess.CompletedProcess(argv, 0, _answer(value), b"")

    monkeypatch.setattr(link.subprocess, "run", ssh)
    rows = fleet_rows_at(str(data), ctx.clock, 600, True, dict(ctx.env), far=remote_rows)
    [row] = [r for r in rows if r["id"] == "w1"]
    table = fleet_table(rows, False)
    shown = json.loads(fleet_json(rows), parse_constant=_refuse)
    assert row["alive"] and row["state"] == "running" and "w1" in table
    # nothing the host made up is shown as a time, an age or an exit status
    assert row["last_output_unix"] is None and row["last_output_at"] is None
    assert row["idle_s"] is None and row["exit_code"] in (None, -1)
    assert row["started_at"] == "2026-01-01T00:00:00Z"  # the home's own record of it
    assert not any(w in table.lower() for w in ("inf", "nan", "e+308", "0" * 50)), table
    assert [r["id"] for r in shown if r["id"] == "w1"] == ["w1"]


def _refuse(token: str) -> None:
    raise AssertionError(f"`ls --json` wrote {token}")


def test_a_real_last_output_is_kept(ctx: Ctx, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bound refuses what is not real, not what is: a moment a minute ago stands."""
    data = ctx.paths.data
    reg.add(data, "h1", "ssh://u@h1.example", 1)
    reg.write_record(data, "w1", "h1", started_at="2026-01-01T00:00:00Z")
    monkeypatch.setattr(link, "_answers", lambda _path: True)
    body = _answer(60.0)  # quiet a minute, by the host's own clock
    monkeypatch.setattr(
        link.subprocess, "run", lambda argv, **_: subprocess.CompletedProcess(argv, 0, body, b"")
    )
    [row] = [
        r
        for r in fleet_rows_at(str(data), ctx.clock, 600, True, far=remote_rows)
        if r["id"] == "w1"
    ]
    assert row["last_output_unix"] == ctx.clock.now() - 60.0
    assert row["idle_s"] == pytest.approx(60.0)


def _host_says(monkeypatch: pytest.MonkeyPatch, answer: dict[str, Any]) -> None:
    monkeypatch.setattr(link, "_answers", lambda _path: True)
    body = json.dumps(answer).replace('"NaN"', "NaN").replace('"Infinity"', "Infinity").encode()
    monkeypatch.setattr(
        link.subprocess, "run", lambda argv, **_: subprocess.CompletedProcess(argv, 0, body, b"")
    )


@pytest.mark.parametrize("value", CRAFTED, ids=lambda v: repr(v)[:12])
def test_a_crafted_exit_code_or_log_offset_is_unknown_not_a_crash(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch, value: Any
) -> None:
    reg.add(ctx.paths.data, "h1", "ssh://u@h1.example", 1)
    reg.write_record(ctx.paths.data, "w1", "h1", started_at=None)
    b = SshBackend(ctx, "h1")
    _host_says(monkeypatch, {"code": value, "exit_code": value, "reach": "over"})
    assert b.wait("w1", 1.0) == (-1 if value == -1 else 1)  # unknown: a failure
    assert b.exit_status("w1") == (-1 if value == -1 else None)
    assert b.reach("w1") == "over"
    rec = reg.record(ctx.paths.data, "w1")
    assert rec is not None and rec["exit_code"] == (-1 if value == -1 else None)
    _host_says(monkeypatch, {"text": "hi", "offset": value})
    with pytest.raises(SessionError, match="bad offset"):
        b.log("w1")
