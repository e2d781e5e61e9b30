from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from looop.core.promptfile import substitute_prompt_file
from looop.home import jsonio, locks, store
from looop.home.config import load_config, parse_config, resolve_knobs
from looop.home.errors import CorruptState, LooopError
from looop.home.hashing import fnv1a_128, wake_signal
from looop.home.paths import Paths
from looop.runners.presets import default_config_obj


@pytest.mark.parametrize(
    ("data", "want"),
    [
        (b"", "6c62272e07bb014262b821756295c58d"),
        (b"a", "d228cb696f1a8caf78912b704e4a8964"),
        (b"hello world", "6c155799fdc8eec4b91523808e7726b7"),
    ],
)
def test_fnv_vectors(data: bytes, want: str) -> None:
    assert fnv1a_128(data) == want


def test_fnv_change_sensitive() -> None:
    assert fnv1a_128(b"abc") != fnv1a_128(b"abd")


def test_canonical_json_sorted_compact_unescaped() -> None:
    assert jsonio.canonical({"b": 1, "a": "é", "c": 1.0}) == '{"a":"é","b":1,"c":1.0}'


def test_wake_signal() -> None:
    assert wake_signal({"signal": {"x": 1}, "detail": {"t": 2}}) == {"x": 1}
    assert wake_signal({"signal": None}) is None
    assert wake_signal({"x": 1}) == {"x": 1}
    assert wake_signal([1, 2]) == [1, 2]


def test_paths_resolution(tmp_path: Path) -> None:
    p = Paths.resolve({"HOME": "/h"}, tmp_path)
    assert p.data == Path("/h/.local/state/looop")
    p = Paths.resolve({"HOME": "/h", "XDG_STATE_HOME": "/x"}, tmp_path)
    assert p.data == Path("/x/looop")
    p = Paths.resolve({"LOOOP_DATA_DIR": "rel/d", "XDG_STATE_HOME": ""}, tmp_path)
    assert p.data == tmp_path / "rel/d"
    assert p.config == tmp_path / "rel/d/config.json"
    with pytest.raises(LooopError, match="HOME"):
        Paths.resolve({}, tmp_path)


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    f = tmp_path / "a" / "x.json"
    store.atomic_write(f, "one")
    store.atomic_write(f, "two")
    assert f.read_text() == "two"
    assert [p.name for p in f.parent.iterdir()] == ["x.json"]


def test_read_json_fails_closed(tmp_path: Path) -> None:
    f = tmp_path / "s.json"
    assert store.read_json(f) is None
    f.write_bytes(b"{not json")
    with pytest.raises(CorruptState):
        store.read_json(f)
    f.write_bytes(b"[1]")
    with pytest.raises(CorruptState):
        store.read_json_object(f)


def test_tail_lines_reads_backwards(tmp_path: Path) -> None:
    f = tmp_path / "j.md"
    f.write_text("".join(f"- line {i}\n\n" for i in range(1000)))
    assert store.tail_lines(f, 3) == ["- line 997", "- line 998", "- line 999"]
    assert store.tail_lines(tmp_path / "missing", 3) == []


def test_flock_probe(tmp_path: Path) -> None:
    lock = tmp_path / ".lock" / "lock"
    assert not locks.flock_held(lock)
    fd = locks.try_flock(lock)
    assert fd is not None
    assert locks.flock_held(lock)
    assert locks.try_flock(lock) is None
    os.close(fd)
    assert not locks.flock_held(lock)


def test_config_both_shapes() -> None:
    named = parse_config(
        {"default": "pi", "runners": {"pi": {"tick": "pi -p", "interactive": "pi @x"}}}, "c"
    )
    r = named.runner()
    assert r is not None and r.tick == "pi -p" and r.worker == "pi @x"
    flat = parse_config({"tick_command": "t", "worker_command": "w"}, "c")
    r = flat.runner()
    assert r is not None and (r.tick, r.worker) == ("t", "w")


@pytest.mark.parametrize(
    ("obj", "key"),
    [
        ({"tick_command": 5}, "tick_command"),
        ({"tick_command": "t", "interval": "soon"}, "interval"),
        ({"tick_command": "t", "interval": 0}, "interval"),
        ({"tick_command": "t", "max_daily_usd": "x"}, "max_daily_usd"),
        ({"default": "nope", "runners": {"a": {"tick": "t"}}}, "default"),
        ({"runners": {"a": {"tick": "t", "cost": {"type": "r"}}}}, "runners.a.cost"),
        ({"tick_command": "t", "notify_urls": "ntfy://x"}, "notify_urls"),
    ],
)
def test_config_bad_value_names_key(obj: dict[str, object], key: str) -> None:
    with pytest.raises(LooopError) as e:
        parse_config(obj, "cfg.json")
    assert f"'{key}'" in str(e.value)
    assert "\n" not in str(e.value)


def test_config_file_errors(tmp_path: Path) -> None:
    f = tmp_path / "config.json"
    cfg = load_config(f, default_config_obj())
    assert not cfg.exists and cfg.default == "claude"
    f.write_text("{oops")
    with pytest.raises(LooopError, match="not valid JSON"):
        load_config(f)


def test_knob_precedence_env_over_config_over_default() -> None:
    cfg = parse_config({"tick_command": "t", "interval": 30}, "c")
    warnings: list[str] = []
    k = resolve_knobs(cfg, {}, warnings.append)
    assert k.num("interval") == 30 and k.interval_for("busy") == 30
    k = resolve_knobs(cfg, {"LOOOP_INTERVAL": "7"}, warnings.append)
    assert k.num("interval") == 7
    k = resolve_knobs(cfg, {"LOOOP_INTERVAL": "fast"}, warnings.append)
    assert k.num("interval") == 30
    assert len(warnings) == 1 and "LOOOP_INTERVAL" in warnings[0]
    assert resolve_knobs(cfg, {}).num("sensor_max_bytes") == 8192


def test_prompt_file_substitution_quotes_once(tmp_path: Path) -> None:
    p = tmp_path / "with space" / "p.md"
    q = f"'{p}'"
    assert substitute_prompt_file('claude "$(cat {{prompt_file}})"', p) == f'claude "$(cat {q})"'
    assert substitute_prompt_file("x '{{prompt_file}}'", p) == f"x {q}"
    assert substitute_prompt_file('x "{{prompt_file}}"', p) == f"x {q}"
    assert substitute_prompt_file("pi @{{prompt_file}}", p) == f"pi @{q}"


def test_state_json_sorted(tmp_path: Path) -> None:
    f = tmp_path / "s.json"
    store.write_json(f, {"b": 1, "a": 2})
    assert f.read_text() == '{"a":2,"b":1}\n'
    assert json.loads(f.read_text()) == {"a": 2, "b": 1}


def test_a_bad_value_under_a_hostile_key_is_still_named_in_one_line() -> None:
    from looop.home import jsonio

    for key in ["\n", "a\rb", "\x1b[2J", "k" * 500]:
        with pytest.raises(jsonio.UnsafeJSON) as e:
            jsonio.check_values({"cmd": {key: "\x00"}}, 64, allow_nul=False)
        said = str(e.value)
        assert "\n" not in said and "\r" not in said and "\x1b" not in said
        assert said.startswith("field 'cmd.") and len(said) < 200
