from __future__ import annotations

import hashlib
import json

from looop.home.paths import Paths
from looop.loop.world import WorldMemo, describe_changes, read_world


def _snap(paths: Paths, name: str, obj: object) -> None:
    paths.snapshots.mkdir(parents=True, exist_ok=True)
    (paths.snapshots / f"{name}.json").write_text(json.dumps(obj))


def _blake(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def test_hash_matches_exact_byte_layout(paths: Paths) -> None:
    paths.playbook.write_text("PB\n")
    paths.goals.mkdir()
    (paths.goals / "b.md").write_text("goal: b\n")
    (paths.goals / "a.md").write_text("goal: a\n")
    _snap(paths, "sensor-x", {"signal": {"z": 1, "a": "é"}, "detail": {"t": 5}})
    _snap(paths, "sys-goals", {"signal": {}, "detail": {}})
    (paths.snapshots / "sensor-raw.json").write_bytes(b"not json")
    want = (
        b"@@ PLAYBOOK.md\nPB\n"
        b"@@ goals/a.md\ngoal: a\n"
        b"@@ goals/b.md\ngoal: b\n"
        b"@@ snapshots/sensor-raw.json\nnot json"
        + '@@ snapshots/sensor-x.json\n{"a":"é","z":1}\n'.encode()
        + b"@@ snapshots/sys-goals.json\n{}\n"
    )
    w = read_world(paths)
    assert w.hash == _blake(want)
    assert w.policy_hash == _blake(
        b"@@ PLAYBOOK.md\nPB\n@@ goals/a.md\ngoal: a\n@@ goals/b.md\ngoal: b\n"
    )


def test_detail_does_not_wake_but_signal_does(paths: Paths) -> None:
    _snap(paths, "sensor-ci", {"signal": {"red": False}, "detail": {"age": 1}})
    h1 = read_world(paths).hash
    _snap(paths, "sensor-ci", {"signal": {"red": False}, "detail": {"age": 99}})
    assert read_world(paths).hash == h1
    _snap(paths, "sensor-ci", {"signal": {"red": True}, "detail": {"age": 99}})
    assert read_world(paths).hash != h1


def test_goal_edit_and_archive_change_hash(paths: Paths) -> None:
    paths.goals.mkdir()
    g = paths.goals / "ship.md"
    g.write_text("goal: ship\n")
    h1 = read_world(paths).hash
    assert read_world(paths).hash == h1  # stable
    g.write_text("goal: ship it\n")
    h2 = read_world(paths).hash
    assert h2 != h1
    paths.goals_archive.mkdir()
    g.rename(paths.goals_archive / "ship.md")
    assert read_world(paths).hash not in (h1, h2)


def test_sensor_script_edit_does_not_wake(paths: Paths) -> None:
    paths.sensors.mkdir()
    s = paths.sensors / "x.sh"
    s.write_text("echo 1\n")
    h1 = read_world(paths).hash
    s.write_text("echo 2 # cosmetic\n")
    assert read_world(paths).hash == h1


def test_describe_changes_names_what_woke_the_loop(paths: Paths) -> None:
    paths.goals.mkdir()
    (paths.goals / "a.md").write_text("x")
    _snap(paths, "sensor-ci", {"signal": {"red": False}})
    old = read_world(paths).items
    (paths.goals / "a.md").write_text("y")
    (paths.goals / "b.md").write_text("new")
    _snap(paths, "sensor-ci", {"signal": {"red": True}})
    lines = describe_changes(old, read_world(paths).items)
    assert "~ goal:a edited (body below)" in lines
    assert "+ goal:b appeared" in lines
    assert '~ snap:sensor-ci signal: {"red":false} → {"red":true}' in lines
    assert describe_changes(None, {})[0].startswith("(first decision")


def test_describe_changes_lists_every_change() -> None:
    """One cap only, the prompt's: it shows 200 and counts the rest (test_prompt_v1)."""
    new = {f"goal:{i:03}": "h" for i in range(300)}
    lines = describe_changes({}, new)
    assert len(lines) == 300 and lines[-1] == "+ goal:299 appeared"


def test_a_memo_answers_an_unchanged_read_and_rereads_any_change(paths: Paths) -> None:
    paths.playbook.write_text("PB\n")
    _snap(paths, "sensor-x", {"signal": {"n": 1}})
    memo = WorldMemo()
    first = read_world(paths, memo)
    assert first == read_world(paths)  # the memo changes nothing about the answer
    assert read_world(paths, memo) is first  # same bytes: not parsed or hashed again
    # same size, different bytes: a new world
    _snap(paths, "sensor-x", {"signal": {"n": 2}})
    second = read_world(paths, memo)
    assert second.hash != first.hash and second == read_world(paths)
    # a policy edit, a new snapshot, one gone: each a new world, equal to a fresh read
    paths.playbook.write_text("PC\n")
    third = read_world(paths, memo)
    assert third.policy_hash != second.policy_hash and third == read_world(paths)
    _snap(paths, "sensor-y", {"signal": {}})
    assert "snap:sensor-y" in read_world(paths, memo).items
    (paths.snapshots / "sensor-y.json").unlink()
    assert read_world(paths, memo) == read_world(paths) == third


def test_the_light_hash_of_state_json_is_the_beats_hash(paths: Paths) -> None:
    """`looop state --json` hashes through home/worldhash.py over strings; the beat through
    read_world over Paths: odd names, links, dot files, a directory and damaged readings
    included, they agree — and a goal edit moves both."""
    from looop.home.worldhash import world_hash_at

    d = paths.data
    assert world_hash_at(str(d)) == read_world(paths).hash  # an empty data dir
    paths.playbook.write_bytes(b"PB \xff\n")
    paths.goals.mkdir()
    for name in ("b.md", "a.b.md", ".md", ".hidden.md", "notes.txt", "é.md"):
        (paths.goals / name).write_text(f"goal {name}\n")
    (paths.goals / "dir.md").mkdir()
    (paths.goals / "link.md").symlink_to(paths.goals / "b.md")
    (paths.goals / "dangling.md").symlink_to(paths.goals / "missing.md")
    _snap(paths, "sensor-x", {"signal": {"z": [1, 2.0], "a": "é\u2028"}, "detail": {"t": 5}})
    _snap(paths, "sensor-list", [3, 2, 1])
    (paths.snapshots / "sensor-nan.json").write_text('{"signal": NaN}')
    (paths.snapshots / "sensor-torn.json").write_text('{"signal": ')
    (paths.snapshots / ".json").write_text("{}")
    (paths.snapshots / "sensor-x.err").write_text("ignored")
    first = world_hash_at(str(d))
    assert first == read_world(paths).hash
    (paths.goals / "a.b.md").write_text("edited\n")
    assert world_hash_at(str(d)) == read_world(paths).hash != first


def test_the_light_ask_reader_is_the_mailboxs(paths: Paths) -> None:
    from looop.human.mailbox import answer, new_ask, pending
    from looop.views.status import pending_asks

    assert pending_asks(str(paths.data)) == pending(paths.asks, paths.answers) == []
    for who in ("w1", "w2", "w1"):
        new_ask(paths.asks, paths.answers, who, f"from {who}?", None, [], 1.0)
    answer(paths.asks, paths.answers, "w2-1", "yes", 2.0)
    (paths.asks / "w9-1.json").write_text("[not an object]")
    got = pending_asks(str(paths.data))
    assert got == pending(paths.asks, paths.answers)
    assert [a["id"] for a in got] == ["w1-1", "w1-2", "w9-1"]


def test_state_json_hashes_the_damped_world_the_beat_gates_on(paths: Paths) -> None:
    """While a sensor flaps, `state --json` shows the hash with its signal pinned (what the
    beat compares and commits), not the raw one; when it settles, the raw one again."""
    from looop.home.knobs import KNOBS
    from looop.home.worldhash import world_hash_at
    from looop.loop import flap

    policy = flap.FlapPolicy(
        KNOBS["flap_window"].default, KNOBS["flap_high"].default, KNOBS["flap_low"].default
    )
    res = None
    for sig in ("0", "1", "0", "1"):
        _snap(paths, "sensor-clock", {"signal": sig})
        world = read_world(paths)
        res = flap.track(paths, world.items, policy, lambda: {"snap:sensor-clock": '"0"'})
    assert res is not None and res.flapping == ["sensor-clock"]
    raw = read_world(paths)
    gated = raw.pinned(res.pinned)
    assert gated.hash != raw.hash
    assert world_hash_at(str(paths.data)) == gated.hash
    assert world_hash_at(str(paths.data), damped=False) == raw.hash
    # a damaged flap record pins nothing, as the beat re-baselines it
    paths.signal_flap.write_text("{torn")
    assert world_hash_at(str(paths.data)) == raw.hash
