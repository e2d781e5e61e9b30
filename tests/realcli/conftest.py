"""Fixtures for the real-CLI suite: the installed CLIs (once per session), a scripted model
server per test, and a Rig that wires one CLI, the server and a data dir together."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from looop.core.context import Ctx
from tests.realcli.harness import Rig, make_rig
from tests.realcli.install import InstallError, bin_dir, cache_dir, install, npm_path
from tests.realcli.model_server import ModelServer

NPM_MISSING = (
    "REAL-CLI SUITE SKIPPED: `npm` is not on PATH, so the real claude/codex/pi/opencode CLIs "
    "cannot be installed — install Node.js with npm to run tests/realcli"
)


# What the collection-time install left for the fixture: the bin dir, or why it failed.
_INSTALLED = pytest.StashKey["Path | InstallError"]()
_SKIPPED = pytest.StashKey[bool]()


def _needs_cli(item: pytest.Item) -> bool:
    here = Path(__file__).parent
    return here in Path(str(item.path)).parents and "realcli_bin" in getattr(
        item, "fixturenames", ()
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without npm, every test that needs the real CLIs is skipped, loudly, at collection."""
    if npm_path() is not None:
        return
    for item in items:
        if _needs_cli(item):
            item.add_marker(pytest.mark.skip(reason=NPM_MISSING))
            config.stash[_SKIPPED] = True


def pytest_collection_finish(session: pytest.Session) -> None:
    """Install before the first test starts, so a slow first download is not charged to one
    test's timeout. A failure is kept and raised by the fixture: every such test errors."""
    config = session.config
    if config.option.collectonly or npm_path() is None:
        return
    if not any(_needs_cli(item) for item in session.items):
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"realcli: the pinned agent CLIs in {cache_dir()}")
    try:
        config.stash[_INSTALLED] = bin_dir(install(say=_to_terminal(config)))
    except InstallError as e:
        config.stash[_INSTALLED] = e


def _to_terminal(config: pytest.Config) -> Callable[[str], None]:
    """Progress lines on the terminal while the CLIs install (about 1.4 GB, minutes): around
    pytest's capture, and from an xdist worker too (a worker's stderr is the run's)."""
    capman = config.pluginmanager.getplugin("capturemanager")

    def say(line: str) -> None:
        with capman.global_and_fixture_disabled() if capman else contextlib.nullcontext():
            sys.stderr.write(line + "\n")
            sys.stderr.flush()

    return say


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if terminalreporter.config.stash.get(_SKIPPED, False):
        terminalreporter.write_line(NPM_MISSING, yellow=True, bold=True)


@pytest.fixture(scope="session")
def realcli_bin(request: pytest.FixtureRequest) -> Path:
    """node_modules/.bin of the pinned CLIs. Any install failure is a test error, never a
    skip."""
    got = request.config.stash.get(_INSTALLED, None)
    if got is None:  # collected without the hook's help (e.g. a plugin reordered things)
        got = bin_dir(install())
    if isinstance(got, InstallError):
        raise InstallError(
            f"the real agent CLIs (claude, codex, pi, opencode) did not install: {got} — "
            "retry with `.venv/bin/python -m tests.realcli.install`"
        ) from got
    return got


@pytest.fixture
def model_server() -> Iterator[ModelServer]:
    with ModelServer() as srv:
        yield srv


@pytest.fixture
def rig_for(
    ctx: Ctx,
    model_server: ModelServer,
    realcli_bin: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[[str], Rig]:
    def build(cli: str) -> Rig:
        return make_rig(cli, ctx, model_server, realcli_bin, monkeypatch)

    return build
