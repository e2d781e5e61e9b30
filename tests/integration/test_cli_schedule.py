"""`looop schedule` as a user meets it: write, list, rm, and one-line errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.clocks import FixedClock
from tests.helpers import Cli

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def clock() -> FixedClock:
    """A frozen clock in New York, where this user lives (see `cli`)."""
    return FixedClock(tz=ZoneInfo("America/New_York"))


@pytest.fixture
def cli(cli: Cli) -> Cli:
    cli.env["TZ"] = "America/New_York"
    return cli


def test_write_list_rm(data: Path, cli: Cli) -> None:
    code, out, err = cli(
        "schedule", "write", "digest", "--cron", "0 9 * * MON", "--tz", "Europe/Berlin",
        "--note", "weekly digest",
    )  # fmt: skip
    assert code == 0, err
    assert "write-schedule digest" in out
    assert "next: " in out and ("09:00 +01:00" in out or "09:00 +02:00" in out)
    code, out, err = cli("schedule", "write", "ci", "--in", "2h", "--note", "check CI")
    assert code == 0 and "next: " in out and "(in 2h)" in out
    code, out, err = cli("schedule", "write", "poll", "--every", "10m")
    assert code == 0 and "every 600s" in out
    code, out, _ = cli("schedule", "list")
    lines = out.splitlines()
    assert [ln.split()[0] for ln in lines] == ["ci", "digest", "poll"]
    assert "weekly digest" in out and "check CI" in out
    code, out, _ = cli("schedule", "list", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["digest"]["record"]["tz"] == "Europe/Berlin"
    assert rows["ci"]["kind"] == "one-shot" and rows["ci"]["due"] is False
    code, out, err = cli("schedule", "rm", "ci")
    assert code == 0 and not (data / "schedules" / "ci.json").exists()
    journal = (data / "journal.md").read_text()
    assert "write-schedule digest" in journal and "drop-schedule ci" in journal


def test_cron_without_tz_uses_the_local_zone(data: Path, cli: Cli) -> None:
    code, _, err = cli("schedule", "write", "am", "--cron", "0 9 * * *")
    assert code == 0, err
    rec = json.loads((data / "schedules" / "am.json").read_text())
    assert rec["tz"] == "America/New_York"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["bad"], "exactly one of --in"),
        (["bad", "--in", "1h", "--every", "2h"], "got --in and --every"),
        (["bad", "--in", "-5"], "cannot be negative"),
        (["bad", "--in", "soon"], "invalid duration"),
        (["bad", "--every", "30s"], "--every must be at least 60s"),
        (["bad", "--cron", "61 * * * *"], "Bad minute"),
        (["bad", "--cron", "0 0 30 2 *"], "Bad day-of-month"),
        (["bad", "--cron", "0 9 * * *", "--tz", "Mars/Olympus"], "unknown time zone"),
        (["bad", "--in", "1h", "--tz", "UTC"], "--tz applies only to --cron"),
        (["../evil", "--in", "1h"], "invalid schedule id"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    data: Path, cli: Cli, args: list[str], needle: str
) -> None:
    code, _, err = cli("schedule", "write", *args)
    assert code != 0 and needle in err, err
    assert len(err.strip().splitlines()) == 1
    assert not list((data / "schedules").glob("*")) if (data / "schedules").exists() else True


def test_rm_unknown_is_an_error(data: Path, cli: Cli) -> None:
    code, _, err = cli("schedule", "rm", "nope")
    assert code == 1 and "no schedule named 'nope'" in err


def test_list_shows_broken_files(data: Path, cli: Cli) -> None:
    (data / "schedules").mkdir(parents=True)
    (data / "schedules" / "hand.json").write_text("{oops")
    code, out, _ = cli("schedule", "list")
    assert code == 0 and "hand" in out and "INVALID" in out


def test_help_names_the_verb_once(data: Path, cli: Cli) -> None:
    code, out, _ = cli("help", "schedule")
    assert code == 0 and out.splitlines()[0].startswith("Usage: looop schedule ")
    assert "write" in out and "list" in out and "rm" in out


def test_status_shows_schedules_as_the_last_beat_saw_them(data: Path, cli: Cli) -> None:
    assert cli("schedule", "write", "later", "--in", "2h")[0] == 0
    (data / "schedules" / "past.json").write_text('{"v": 1, "at": 1}')
    (data / "schedules" / "junk.json").write_text("{")
    # one real beat senses (a dry run writes nothing); its runner decides nothing, no matter
    runner = {"tick": "true", "worker": "cat {{prompt_file}}"}
    cfg = {"default": "x", "runners": {"x": runner}, "max_daily_usd": 0}
    (data / "config.json").write_text(json.dumps(cfg))
    assert cli("tick")[0] == 1
    code, out, _ = cli("status")
    assert code == 0
    line = next(ln for ln in out.splitlines() if ln.startswith("schedules:"))
    assert "3 (junk, later, past)" in line and "due: past" in line and "invalid: junk" in line
    _, out, _ = cli("status", "--json")
    st = json.loads(out)
    assert st["schedules"]["due"] == ["past"] and st["asks"] == []


def test_list_tells_the_truth_after_the_wall_clock_steps_back(
    data: Path, cli: Cli, clock: FixedClock
) -> None:
    """The pulse fires an `every` on the monotonic clock past a backward step (its marks);
    `schedule list` reads the same marks, so it says when it really fires next."""
    from looop.home.paths import Paths
    from looop.human import schedules

    assert cli("schedule", "write", "poll", "--every", "60")[0] == 0
    paths = Paths.at(data)
    clock.advance(130)  # two periods fired: the beat's probe marks them
    schedules.probe(paths.schedules, clock, paths.schedule_marks)
    clock.t -= 3600  # the wall clock steps back an hour; the monotonic one runs on
    _, out, _ = cli("schedule", "list")
    line = next(ln for ln in out.splitlines() if ln.startswith("poll"))
    assert "next in 50s" in line or "next in 49s" in line, line
    _, out, _ = cli("schedule", "list", "--json")
    (row,) = json.loads(out)
    assert 0 < row["next_due_unix"] - clock.now() <= 50


def test_an_in_past_ten_years_saturates_instead_of_being_refused(data: Path, cli: Cli) -> None:
    """v1.0 clamps a far --in to the end of time; here it is ten years, said on stderr."""
    code, out, err = cli("schedule", "write", "far", "--in", "36500d", "--note", "someday")
    assert code == 0, err
    assert "past ten years, so ten years" in err and "write-schedule far" in out
    code, out, _ = cli("schedule", "list", "--json")
    row = json.loads(out)[0]
    assert row["name"] == "far" and row["due"] is False and row["signal"] == "pending"
