"""The log cap's two knobs: defaults, the env that sets them, and values they refuse."""

from __future__ import annotations

from looop.home import logfiles
from looop.home.config import parse_config, resolve_knobs


def _cap(env: dict[str, str], warned: list[str]) -> tuple[int, int]:
    return resolve_knobs(parse_config({}, "<test>"), env, warned.append).log_cap()


def test_the_defaults_are_the_sessions_rooms_own() -> None:
    warned: list[str] = []
    assert _cap({}, warned) == (logfiles.MAX_BYTES, logfiles.MAX_FILES) == (16 << 20, 4)
    assert warned == []


def test_the_env_sets_both() -> None:
    env = {"LOOOP_SESSION_LOG_MAX_BYTES": "1048576", "LOOOP_SESSION_LOG_MAX_FILES": "7"}
    assert _cap(env, []) == (1 << 20, 7)


def test_a_cap_that_would_not_hold_is_refused_with_a_line_naming_it() -> None:
    """0 bytes (a rotation per write), one file (nothing kept at a rotation), garbage: the
    default stands and the warning names the variable and the range."""
    for name, bad in (
        ("LOOOP_SESSION_LOG_MAX_BYTES", "0"),
        ("LOOOP_SESSION_LOG_MAX_BYTES", "-5"),
        ("LOOOP_SESSION_LOG_MAX_BYTES", "10MB"),
        ("LOOOP_SESSION_LOG_MAX_FILES", "1"),
        ("LOOOP_SESSION_LOG_MAX_FILES", "nan"),
    ):
        warned: list[str] = []
        assert _cap({name: bad}, warned) == (16 << 20, 4), name
        assert len(warned) == 1 and name in warned[0] and "from" in warned[0], warned
