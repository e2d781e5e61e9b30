"""The spend caps at `worker start`: a bad --budget, the daily budget over decides and
metered workers, and the fail-closed setting for a worker looop cannot meter — each refused
in one line before anything starts."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from looop.home.paths import Paths
from looop.home.stamps import utc_stamp
from looop.seed import ensure_data_dir
from tests.helpers import clean_env, run_cli

pytestmark = pytest.mark.unit


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    data = tmp_path / "data"
    ensure_data_dir(Paths.at(data))
    return clean_env(tmp_path, data)


def _spent(env: dict[str, str], usd: float) -> None:
    row = {"cost_usd": usd, "id": "w9", "kind": "worker", "runner": "claude"}
    row["ts"] = utc_stamp(time.time())
    with open(Path(env["LOOOP_DATA_DIR"]) / "cost.jsonl", "a") as fh:
        fh.write(json.dumps(row) + "\n")


@pytest.mark.parametrize("bad", ["-1", "0", "nan", "inf", "1e9"])
def test_a_budget_that_is_no_amount_is_refused(
    capsys: pytest.CaptureFixture[str], env: dict[str, str], bad: str
) -> None:
    code, _, err = run_cli(capsys, "worker", "start", "w1", "--budget", bad, "hi", env=env)
    assert code != 0 and "give a positive amount in USD, at most 10000" in err
    assert len(err.strip().splitlines()) == 1, err
    assert not (Path(env["LOOOP_DATA_DIR"]) / "budgets").exists()


def test_no_start_once_the_daily_budget_is_spent_by_workers(
    capsys: pytest.CaptureFixture[str], env: dict[str, str]
) -> None:
    _spent(env, 2.5)  # a metered worker's rows count against the one daily budget
    env = {**env, "LOOOP_MAX_DAILY_USD": "2"}
    code, _, err = run_cli(capsys, "worker", "start", "w1", "--command", "sleep 9", "hi", env=env)
    assert code != 0 and "reached the daily budget $2.00" in err
    assert not (Path(env["LOOOP_DATA_DIR"]) / "sessions" / "w1").exists()  # nothing started


def test_an_unmetered_worker_is_refused_only_when_asked(
    capsys: pytest.CaptureFixture[str], env: dict[str, str]
) -> None:
    env = {**env, "LOOOP_REFUSE_UNMETERED": "1"}
    code, _, err = run_cli(
        capsys, "worker", "start", "w1", "--command", "my-agent go", "hi", env=env
    )
    assert code != 0 and "'my-agent' leaves no spend record" in err
