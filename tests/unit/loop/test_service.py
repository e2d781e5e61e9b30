"""`looop service`: the rendered systemd unit and launchd plist (pure rendering)."""

from __future__ import annotations

import plistlib
from pathlib import Path

import pytest

from looop.core.context import Ctx
from looop.home.errors import LooopError
from looop.loop.service import default_name, install, render, uninstall

ARGV = ["/opt/py 3/bin/python", "-m", "looop", "pulse"]


def _lines(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for ln in text.splitlines():
        if "=" in ln and not ln.startswith("["):
            k, v = ln.split("=", 1)
            out.setdefault(k, []).append(v)
    return out


def test_the_unit_restarts_on_failure_with_the_watchdog_and_lives_under_the_env_home(
    ctx: Ctx,
) -> None:
    svc = render(ctx, "home1", ARGV, "linux")
    home = Path(ctx.env["HOME"])
    assert svc.path == home / ".config/systemd/user/looop-home1.service"
    keys = _lines(svc.text)
    assert keys["Restart"] == ["on-failure"] and keys["Type"] == ["notify"]
    assert keys["ExecStart"] == ['"/opt/py 3/bin/python" "-m" "looop" "pulse"']
    assert keys["KillMode"] == ["control-group"] and keys["NotifyAccess"] == ["main"]
    assert keys["Delegate"] == ["yes"]  # its cgroups per worker and check live below it
    assert int(keys["WatchdogSec"][0].rstrip("s")) > ctx.knobs().num("tick_timeout_secs")
    assert f'"LOOOP_DATA_DIR={ctx.paths.data}"' in keys["Environment"]


def test_no_watchdog_when_it_is_turned_off(ctx: Ctx) -> None:
    assert isinstance(ctx.env, dict)
    ctx.env["LOOOP_PULSE_WATCHDOG_SECS"] = "0"
    assert "WatchdogSec" not in render(ctx, "x", ARGV, "linux").text


@pytest.mark.parametrize(
    ("word", "written"),
    [
        ("a%hb", '"a%%hb"'),  # a specifier stays literal
        ("$HOME", '"$$HOME"'),  # no expansion
        ('say "hi"\\', '"say \\"hi\\"\\\\"'),
    ],
)
def test_words_are_quoted_so_systemd_reads_them_back_unchanged(
    ctx: Ctx, word: str, written: str
) -> None:
    text = render(ctx, "x", [word], "linux").text
    assert f"ExecStart={written}\n" in text


@pytest.mark.parametrize("bad", ["a\nExecStartPre=/bin/rm -rf ~", "a\rb", "a\0b"])
def test_a_line_break_cannot_smuggle_a_setting(ctx: Ctx, bad: str) -> None:
    with pytest.raises(LooopError, match="line break"):
        render(ctx, "x", [bad], "linux")


@pytest.mark.parametrize("bad", ["", "../evil", "a b", "x" * 65, "a/b"])
def test_a_bad_name_is_one_line(ctx: Ctx, bad: str) -> None:
    with pytest.raises(LooopError, match="service name"):
        render(ctx, bad, ARGV, "linux")


def test_the_default_name_differs_per_data_dir(ctx: Ctx) -> None:
    name = default_name(ctx)
    assert len(name) == 8 and name == default_name(ctx)
    assert f"looop-{name}.service" == render(ctx, name, ARGV, "linux").path.name


def test_the_plist_keeps_it_alive_only_after_a_failed_exit(ctx: Ctx) -> None:
    svc = render(ctx, "home1", ARGV, "darwin")
    assert svc.path == Path(ctx.env["HOME"]) / "Library/LaunchAgents/com.looop.home1.plist"
    plist = plistlib.loads(svc.text.encode())
    assert plist["ProgramArguments"] == ARGV
    assert plist["KeepAlive"] == {"SuccessfulExit": False} and plist["RunAtLoad"] is True
    assert plist["EnvironmentVariables"]["LOOOP_DATA_DIR"] == str(ctx.paths.data)


def test_install_writes_once_and_uninstall_removes(ctx: Ctx) -> None:
    svc = render(ctx, "x", ARGV, "linux")
    assert install(svc) is True and svc.path.read_text() == svc.text
    assert install(svc) is False  # unchanged
    assert uninstall(svc) is True and not svc.path.exists()
