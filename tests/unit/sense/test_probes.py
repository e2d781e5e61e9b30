"""System probes: sys-claims, sys-goals, and a probe that crashes."""

from __future__ import annotations

import json
from typing import Any

from looop.core.context import Ctx
from looop.core.readings import Reading, split_ages
from looop.home.clock import offset_stamp
from looop.home.paths import Paths
from looop.sense import sense
from looop.sense.probes import default_probes, probe_claims, probe_goals, run_probes
from tests.clocks import FixedClock


def snapshot_bytes(paths: Paths, name: str) -> bytes:
    return (paths.snapshots / f"{name}.json").read_bytes()


def test_default_probes() -> None:
    assert set(default_probes()) == {
        "sys-asks",
        "sys-claims",
        "sys-goals",
        "sys-schedules",
        "sys-sessions",
    }


def test_claims_sorted_with_unparseable_as_null(ctx: Ctx, paths: Paths) -> None:
    paths.claims.mkdir()
    (paths.claims / "b.json").write_text('{"session":"w2","name":"b"}\n')
    (paths.claims / "a.json").write_text('{"name":"a","session":"w1"}\n')
    (paths.claims / "c.json").write_text("")  # being written right now
    (paths.claims / ".a.json.tmp.1.ff").write_text("{}")
    (paths.claims / "notes.txt").write_text("not a claim")
    (paths.claims / "dir.json").mkdir()
    [r] = run_probes(ctx, {"sys-claims": probe_claims})
    assert r.ok and r.name == "sys-claims"
    assert snapshot_bytes(paths, "sys-claims") == (
        b'{"signal":[{"claim":{"name":"a","session":"w1"},"name":"a"},'
        b'{"claim":{"name":"b","session":"w2"},"name":"b"},'
        b'{"claim":null,"name":"c"}]}\n'
    )


def test_claims_order_is_by_name_not_by_directory(ctx: Ctx, paths: Paths) -> None:
    paths.claims.mkdir()
    names = [f"{c}{i}" for i, c in enumerate("qzbmxacoktwe")]
    for name in names:
        (paths.claims / f"{name}.json").write_text(json.dumps({"name": name}))
    run_probes(ctx, {"sys-claims": probe_claims})
    got = [e["name"] for e in json.loads(snapshot_bytes(paths, "sys-claims"))["signal"]]
    assert got == sorted(names)


def test_claims_missing_or_empty_dir(ctx: Ctx, paths: Paths) -> None:
    run_probes(ctx, {"sys-claims": probe_claims})
    assert snapshot_bytes(paths, "sys-claims") == b'{"signal":[]}\n'
    paths.claims.mkdir()
    run_probes(ctx, {"sys-claims": probe_claims})
    assert snapshot_bytes(paths, "sys-claims") == b'{"signal":[]}\n'


def test_a_pulse_s_memory_keeps_no_stale_reading(ctx: Ctx, paths: Paths) -> None:
    """Beat to beat the probes' last readings are kept: an equal value keeps its bytes, and
    every change (an item added, a value changed, a claim gone) is still written."""
    drawn: dict[str, Reading] = {}
    paths.claims.mkdir()
    (paths.claims / "a.json").write_text('{"name":"a","session":"w1"}')
    seen = []
    for step in ("first", "same", "b", "w2", "gone"):
        if step == "b":
            (paths.claims / "b.json").write_text('{"name":"b","session":"w1"}')
        elif step == "w2":
            (paths.claims / "a.json").write_text('{"name":"a","session":"w2"}')
        elif step == "gone":
            (paths.claims / "a.json").unlink()
        [r] = run_probes(ctx, {"sys-claims": probe_claims}, drawn)
        on_disk = snapshot_bytes(paths, "sys-claims")
        assert r.body == on_disk and json.loads(on_disk) == probe_claims(ctx)
        seen.append(on_disk)
    assert seen[0] == seen[1] and len(set(seen)) == 4


def goals_detail(paths: Paths) -> Any:
    return json.loads(snapshot_bytes(paths, "sys-goals"))


def test_goal_ages_from_activity(ctx: Ctx, paths: Paths, clock: FixedClock) -> None:
    paths.goals.mkdir()
    for gid in ("ship", "tidy", "new"):
        paths.goal(gid).write_text(f"# {gid}\n")
    (paths.goals / "archive").mkdir()
    (paths.goals / "archive" / "old.md").write_text("# old\n")
    (paths.goals / "README.txt").write_text("not a goal")
    now = int(clock.now())
    activity = {"ship": now - 90, "tidy": now - 7200, "gone": now - 5}
    paths.goal_activity.write_text(json.dumps(activity))
    [r] = run_probes(ctx, {"sys-goals": probe_goals})
    assert r.ok
    snap = goals_detail(paths)
    assert snap["signal"] == {}
    goals = snap["detail"]["goals"]
    assert goals["new"] == {"last_acted": None, "last_acted_unix": None, "age_s": None}
    assert goals["ship"]["last_acted_unix"] == now - 90
    assert goals["tidy"]["last_acted_unix"] == now - 7200
    assert goals["ship"]["last_acted"] == offset_stamp(clock.local(now - 90))
    assert (goals["ship"]["age_s"], goals["tidy"]["age_s"]) == (90, 7200)
    assert set(goals) == {"new", "ship", "tidy"}
    before = goals_detail(paths)
    clock.advance(600)  # time passing moves only the ages, which the prompt lists apart
    run_probes(ctx, {"sys-goals": probe_goals})
    after = goals_detail(paths)
    assert after["detail"]["goals"]["ship"]["age_s"] == 690
    assert (
        split_ages(Reading("sys-goals", after, True))[0]
        == split_ages(Reading("sys-goals", before, True))[0]
    )


def test_corrupt_activity_means_never_acted(ctx: Ctx, paths: Paths) -> None:
    paths.goals.mkdir()
    paths.goal("ship").write_text("# ship\n")
    paths.goal_activity.write_text("{not json")
    [r] = run_probes(ctx, {"sys-goals": probe_goals})
    assert r.ok
    assert goals_detail(paths)["detail"]["goals"] == {
        "ship": {"last_acted": None, "last_acted_unix": None, "age_s": None}
    }
    paths.goal_activity.write_text('{"ship": "yesterday"}')
    run_probes(ctx, {"sys-goals": probe_goals})
    assert goals_detail(paths)["detail"]["goals"]["ship"]["last_acted_unix"] is None


def test_failed_probe_becomes_an_error_snapshot(ctx: Ctx, paths: Paths) -> None:
    def boom(_: Ctx) -> Any:
        raise RuntimeError("sessions dir exploded")

    def nan(_: Ctx) -> Any:
        return {"signal": float("nan")}

    readings = run_probes(ctx, {"sys-boom": boom, "sys-nan": nan, "sys-goals": probe_goals})
    assert [(r.name, r.ok) for r in readings] == [
        ("sys-boom", False),
        ("sys-nan", False),
        ("sys-goals", True),
    ]
    assert readings[0].error is not None and "sessions dir exploded" in readings[0].error
    snap = json.loads(snapshot_bytes(paths, "sys-boom"))
    assert snap["signal"] == {"error": "probe-failed"}
    assert "RuntimeError" in snap["detail"]["message"]
    assert json.loads(snapshot_bytes(paths, "sys-nan"))["signal"] == {"error": "probe-failed"}


def test_sense_prunes_sys_snapshots_of_retired_probes(ctx: Ctx, paths: Paths) -> None:
    sense(ctx, ctx.knobs())
    assert (paths.snapshots / "sys-goals.json").exists()
    readings = sense(ctx, ctx.knobs(), probes={"sys-claims": probe_claims})
    assert [r.name for r in readings] == ["sys-claims"]
    assert not (paths.snapshots / "sys-goals.json").exists()
    assert (paths.snapshots / "sys-claims.json").exists()
