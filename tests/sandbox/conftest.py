"""Fixtures for the sandbox suite: the real srt (npm) and Debian's bwrap, socat and ripgrep,
installed once per run by tests/sandbox/install.py; skipped only when npm itself is missing,
and said so loudly."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sandbox.install import InstallError, cache_dir, install, npm_path

NPM_MISSING = (
    "SANDBOX SUITE SKIPPED: `npm` is not on PATH, so Anthropic's sandbox runtime (srt) cannot "
    "be installed — install Node.js with npm to run tests/sandbox"
)

_INSTALLED = pytest.StashKey["Path | InstallError"]()
_SKIPPED = pytest.StashKey[bool]()
HERE = Path(__file__).parent


def _needs_srt(item: pytest.Item) -> bool:
    return HERE in Path(str(item.path)).parents and "srt" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if npm_path() is not None:
        return
    for item in items:
        if _needs_srt(item):
            item.add_marker(pytest.mark.skip(reason=NPM_MISSING))
            config.stash[_SKIPPED] = True


def pytest_collection_finish(session: pytest.Session) -> None:
    """Install before the first test, so a first download is not charged to one test's
    timeout; a failure is kept and raised by the fixture (every such test errors)."""
    config = session.config
    if config.option.collectonly or npm_path() is None:
        return
    if not any(_needs_srt(item) for item in session.items):
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"sandbox: srt and bubblewrap, in {cache_dir()} (first run: ~10 s)")
    try:
        config.stash[_INSTALLED] = install()
    except InstallError as e:
        config.stash[_INSTALLED] = e


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if terminalreporter.config.stash.get(_SKIPPED, False):
        terminalreporter.write_line(NPM_MISSING, yellow=True, bold=True)


@pytest.fixture(scope="session")
def srt(request: pytest.FixtureRequest) -> Path:
    """The pinned srt program. Any install failure is a test error, never a skip."""
    got = request.config.stash.get(_INSTALLED, None)
    if got is None:
        got = install()
    if isinstance(got, InstallError):
        raise InstallError(
            f"the sandbox runtime (srt, bubblewrap, socat, ripgrep) did not install: {got} — "
            "retry with `.venv/bin/python -m tests.sandbox.install`"
        ) from got
    return got
