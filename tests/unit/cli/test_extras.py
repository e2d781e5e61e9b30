"""The install's own facts. A part that needs an extra the install lacks (`looop[mcp]`,
`looop[notify]`, `looop[k8s]`) says in one line which extra to install, and does nothing else
(the missing package simulated in sys.modules: nothing is uninstalled); `looop version` is
the installed distribution's."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from looop.core.context import Ctx
from looop.home.config import EXTRAS, need_extra
from looop.home.errors import LooopError
from looop.human.notify import drain, notify
from tests.helpers import clean_env, run_cli, wire

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("extra", sorted(EXTRAS))
def test_a_missing_extra_is_one_line_naming_it(extra: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, EXTRAS[extra], None)
    with pytest.raises(LooopError) as got:
        need_extra(extra, "this part")
    assert str(got.value) == f"this part needs the {extra} extra: pip install 'looop[{extra}]'"


def test_looop_mcp_without_the_sdk_says_which_extra_and_serves_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "mcp", None)
    monkeypatch.delitem(sys.modules, "looop.web.mcpserver", raising=False)
    code, out, err = run_cli(capsys, "mcp", env=clean_env(tmp_path, tmp_path / "data"))
    assert (code, out) == (1, "")  # not one byte of the protocol on stdout
    assert err == "looop: looop mcp needs the mcp extra: pip install 'looop[mcp]'\n"
    assert "looop.web.mcpserver" not in sys.modules


def test_notify_urls_without_apprise_record_which_extra_to_install(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "apprise", None)
    wire(ctx, [], notify_urls=["json://127.0.0.1:9/x"])
    notify(ctx, "hello", "n1")
    drain()  # waits for the send's thread
    failed = [f for n, f in ctx.events.seen if n == "notify.failed"]  # type: ignore[attr-defined]
    assert len(failed) == 1
    assert "pip install 'looop[notify]'" in str(failed[0]), failed


def test_looop_version_is_the_installed_distributions(capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.metadata

    installed = f"looop {importlib.metadata.version('looop')}\n"  # what pip installed
    assert run_cli(capsys, "version")[1] == installed
    assert run_cli(capsys, "--version")[1] == installed
