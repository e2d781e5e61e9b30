"""v1.0's `looop state --json` contract: the state object matches docs/schema/state.schema.json
(the file a client can read), v1.0's fields mean what they meant there, and `looop wait` (no id)
prints the same object plus what changed."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from looop.home.locks import try_flock
from looop.home.paths import Paths
from looop.human.mailbox import new_ask
from looop.loop.world import read_world
from tests.helpers import Cli

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "docs" / "schema" / "state.schema.json"
V1_FIELDS = {"world_hash", "pulse_alive", "snapshots", "asks", "workers", "goals", "journal_tail"}


def _schema() -> dict[str, Any]:
    got: dict[str, Any] = json.loads(SCHEMA_FILE.read_text())
    return got


def _lived_in(cli: Cli, data: Path) -> None:
    assert cli("init", "--no-sandbox")[0] == 0
    assert cli("goal", "write", "ship", "ship v2")[0] == 0
    snaps = data / "snapshots"
    snaps.mkdir(exist_ok=True)
    (snaps / "sensor-ci.json").write_text(json.dumps({"signal": "red", "detail": {"n": 3}}))
    (snaps / "sensor-torn.json").write_text('{"signal": ')  # a half-written reading
    (snaps / "sensor-ci.err").write_text("not a reading")
    with (data / "journal.md").open("a") as f:
        for i in range(30):
            f.write(f"- 2026-06-21 10:{i:02d} · noop · line {i}\n")
    new_ask(data / "asks", data / "answers", "w1", "Ship v2?", "PR #7", ["yes", "no"], 1.0)


@pytest.mark.parametrize("verb", ["state", "status"])
def test_state_json_matches_the_schema_and_v1_meanings(cli: Cli, data: Path, verb: str) -> None:
    _lived_in(cli, data)
    code, out, _ = cli(verb, "--json")
    assert code == 0
    st = json.loads(out)
    jsonschema.validate(st, _schema())
    assert st.keys() >= V1_FIELDS
    assert st["pulse_alive"] is False and st["pulse"]["running"] is False
    # the hash the next beat compares: PLAYBOOK, goals and the readings as they are now
    assert st["world_hash"] == read_world(Paths.at(data)).hash
    assert st["snapshots"] == {"sensor-ci": {"signal": "red", "detail": {"n": 3}}}
    # init's setup ask (as v1.0 seeds it), then the worker's
    assert [a["id"] for a in st["asks"]] == ["setup-1", "w1-1"] == st["ask_ids"]
    assert st["asks"][1]["prompt"] == "Ship v2?" and st["asks"][1]["options"] == ["yes", "no"]
    assert "ship" in st["goals"]
    assert len(st["journal_tail"]) == 20 and st["journal_tail"][-1].endswith("line 29")


def test_world_hash_moves_with_a_goal_edit_and_not_otherwise(cli: Cli, data: Path) -> None:
    _lived_in(cli, data)
    first = json.loads(cli("state", "--json")[1])["world_hash"]
    assert json.loads(cli("state", "--json")[1])["world_hash"] == first
    assert cli("goal", "write", "ship", "ship v3")[0] == 0
    assert json.loads(cli("state", "--json")[1])["world_hash"] != first


def test_state_reports_a_running_pulse(cli: Cli, data: Path) -> None:
    _lived_in(cli, data)
    fd = try_flock(Paths.at(data).lock_file)  # stand in for a running pulse
    assert fd is not None
    try:
        st = json.loads(cli("state", "--json")[1])
    finally:
        os.close(fd)
    jsonschema.validate(st, _schema())
    assert st["pulse_alive"] is True


def test_wait_without_an_id_prints_the_state_object(cli: Cli, data: Path) -> None:
    _lived_in(cli, data)
    code, out, _ = cli("wait", "--json")
    assert code == 2  # no pulse: v1.0 returns at once with pulse-down
    got = json.loads(out)
    jsonschema.validate(got, _schema())
    assert got["changed"] == ["pulse-down"] and got.keys() >= V1_FIELDS
    code, out, _ = cli("wait")
    assert code == 2 and out.startswith("changed: [pulse-down]") and "PULSE" in out


def test_the_schema_pins_every_field(cli: Cli, data: Path) -> None:
    """A field added to (or dropped from) the state object without the schema fails here."""
    schema = _schema()
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == set(schema["properties"]) - {"changed"}
    cli("init", "--no-sandbox")
    st = json.loads(cli("state", "--json")[1])
    assert set(st) == set(schema["required"])
    st["surprise"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(st, schema)
