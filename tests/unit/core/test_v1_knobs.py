"""v1.0's environment knobs keep their names and defaults here (docs/COMPAT.md): each is read
from its v1.0 variable, and a value that does not parse warns once and falls back."""

from __future__ import annotations

import pathlib

import pytest

from looop.home.config import Config, ShellPolicy
from looop.home.knobs import KNOBS, resolve_knobs

pytestmark = pytest.mark.unit

# v1.0's spelling and default, as its README and manual give them
V1 = {
    "LOOOP_INTERVAL": 60,
    "LOOOP_MAX_NEXT_INTERVAL": 300,
    "LOOOP_MAX_DECIDES_PER_HOUR": 120,
    "LOOOP_NOOP_TTL": 21600,
    "LOOOP_SENSOR_TIMEOUT": 60,
    "LOOOP_SENSOR_MAX_BYTES": 8192,
    "LOOOP_VERIFY_TIMEOUT_SECS": 60,
    "LOOOP_VERIFY_BEAT_BUDGET_SECS": 120,
    "LOOOP_MAX_WORKERS": 8,
    "LOOOP_WORKER_STUCK_SECS": 900,
    "LOOOP_RUNS_KEEP": 50,
    "LOOOP_PLAYBOOK_KEEP": 20,
    "LOOOP_SESSION_TTL": 259200,
    "LOOOP_EVENTS_MAX_BYTES": 5242880,
    "LOOOP_JOURNAL_MAX_BYTES": 5242880,
    "LOOOP_PROMPT_MAX_BYTES": 262144,
    "LOOOP_WAIT_POLL_MS": 1000,
    "LOOOP_ASK_POLL_MS": 1000,
    "LOOOP_ASK_TIMEOUT_S": 0,  # v1.0: none; 0 means none here
    "LOOOP_TELLS_CONSUMED_KEEP_SECS": 604800,
    "LOOOP_RUNNER_RETRIES": 0,
    "LOOOP_RUNNER_RETRY_SLEEP": 3,
    "LOOOP_TICK_TIMEOUT_SECS": 1800,
    "LOOOP_SHELL_TIMEOUT_SECS": 300,
}


def _by_env(env: str) -> str:
    names = [k.name for k in KNOBS.values() if k.env == env]
    assert len(names) == 1, f"{env} names {len(names)} knobs"
    return names[0]


@pytest.mark.parametrize(("env", "default"), V1.items(), ids=list(V1))
def test_a_v1_knob_keeps_its_name_and_default(env: str, default: int) -> None:
    name = _by_env(env)
    cfg = Config(default=None, runners={}, raw={}, shell_policy=ShellPolicy(), source="test")
    assert resolve_knobs(cfg, {}).values[name] == default
    given = default + 7 if default < 10_000 else default * 2
    assert resolve_knobs(cfg, {env: str(given)}).values[name] == given
    said: list[str] = []
    assert resolve_knobs(cfg, {env: "lots"}, said.append).values[name] == default
    assert len(said) == 1 and env in said[0] and "lots" in said[0]


def test_the_bin_conventions_are_never_read() -> None:
    """LOOOP_TICK_BIN and LOOOP_WORKER_BIN are the user's own words in their commands."""
    src = pathlib.Path(__file__).resolve().parents[3] / "src" / "looop"
    for path in src.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "LOOOP_TICK_BIN" not in text and "LOOOP_WORKER_BIN" not in text, path
