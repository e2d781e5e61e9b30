"""The raw streams recorded from the real CLIs (tests/realcli/streams/), replayed without the
CLIs: what output.log shows for each, what error a beat would report, and what is metered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from looop.decide.streams import StreamRenderer
from looop.home.config import Runner
from looop.loop.setup import preset_notes
from looop.runners.presets import PRESETS
from looop.spend.meter import CostMeter
from tests.realcli.harness import CLIS, STREAMS, VERSIONS
from tests.realcli.model_server import FINAL_TEXT, IDLE_TEXT

RECORDED = sorted(STREAMS.glob("*.jsonl"))


def _split(path: Path) -> tuple[str, str]:
    cli, _, scenario = path.stem.partition("-")
    return cli, scenario


def _replay(path: Path) -> tuple[list[str], StreamRenderer]:
    r = StreamRenderer()
    out: list[str] = []
    for line in path.read_text().splitlines():
        out += r.feed(line)
    return out, r


def test_every_cli_and_scenario_is_recorded_at_its_pinned_version() -> None:
    names = {p.name for p in RECORDED}
    for cli in CLIS:
        for scenario in ("decide", "auth", "http500", "no_decision", "stream_error"):
            assert f"{cli}-{scenario}.jsonl" in names
    versions = json.loads((STREAMS / "versions.json").read_text())
    for name in names:
        assert versions[name] == VERSIONS[_split(Path(name))[0]]


@pytest.mark.parametrize("path", RECORDED, ids=lambda p: p.stem)
def test_recorded_stream_reads_well(path: Path) -> None:
    _, scenario = _split(path)
    out, r = _replay(path)
    text = "\n".join(out)
    assert "pytest-of-" not in path.read_text()  # no temp paths of the machine that recorded
    if scenario == "decide":
        assert r.error is None
        assert FINAL_TEXT.split(":")[0] in text
        assert "  → " in text and ".decision.json" in text
    elif scenario == "no_decision":
        assert r.error is None and IDLE_TEXT.strip().splitlines()[0] in text
        assert "  → " not in text
    else:
        assert r.error, text
        assert "\n" not in r.error
        assert f"  ✗ {r.error}" in text or f": {r.error}" in text


@pytest.mark.parametrize("cli", CLIS)
def test_recorded_successful_runs_are_metered(cli: str) -> None:
    for scenario in ("decide", "no_decision"):
        meter = CostMeter(Runner(cli, PRESETS[cli]["tick"], PRESETS[cli]["worker"]))
        for line in (STREAMS / f"{cli}-{scenario}.jsonl").read_text().splitlines():
            meter.feed(line)
        total = meter.total()
        assert total is not None and 0 < total < 1, (cli, scenario, total)


def test_init_tells_each_preset_what_the_real_cli_needs() -> None:
    env = {"IS_SANDBOX": "1"}
    assert any("trust this folder" in n for n in preset_notes("claude", env))
    assert any("stdin" in n for n in preset_notes("codex", env))
    assert any("model" in n for n in preset_notes("opencode", env))
    assert any("PI_OFFLINE" in n for n in preset_notes("pi", env))
    assert any("--skip-trust" in n for n in preset_notes("gemini", env))
    assert preset_notes("custom", env) == []
