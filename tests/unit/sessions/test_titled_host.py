"""A start from inside a worker finds the host that forked its supervisor by the supervisor's
title (`looop: supervisor w1 (host @looop-…-host-KEY)`, core/proctitle.py); a title of any
other shape names no host, so a process that merely calls itself a supervisor steers nothing
to an address of its choosing."""

from __future__ import annotations

import pytest

from looop.core.procstat import is_web
from looop.sessions.spawner import _titled_host

pytestmark = pytest.mark.unit

GOOD = b"looop: supervisor w1 (host @looop-1000-0123456789abcdef-host-fe12ab)"


def test_a_host_forked_supervisors_title_names_its_hosts_address() -> None:
    assert _titled_host(GOOD) == "\0looop-1000-0123456789abcdef-host-fe12ab"


@pytest.mark.parametrize(
    "title",
    [
        b"looop: supervisor w1",  # started on its own: no host
        b"looop: supervisor w1 (host @looop-1000-0123-beat-fe12)",  # a beat host's name
        b"looop: supervisor w1 (host @/tmp/evil.sock)",  # a path, not looop's name
        b"looop: supervisor w1 (host @looop-1000-01-host-fe/../x)",
        b"looop: supervisor w1 (host @looop-1000-01-host-fe-extra)",
        b"looop: supervisor w1 (host @looop-1000-01-host-)",
        b"looop: supervisor w1 (host @looop-1000-01-host-fe\xff)",
    ],
)
def test_a_title_of_another_shape_names_no_host(title: bytes) -> None:
    assert _titled_host(title) is None


def test_the_web_server_is_known_by_its_argv_or_its_title() -> None:
    assert is_web(b"/usr/bin/python3\0/usr/bin/looop\0web\0")
    assert is_web(b"looop: web /home/me/.looop\0\0\0")
    assert not is_web(b"/usr/bin/python3\0/usr/bin/looop\0webhook\0")
    assert not is_web(b"looop: pulse /home/me/.looop\0")
