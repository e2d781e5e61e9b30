"""The door's cap against the open-file limit: kept when it fits beside the server's own
files and the accept bursts not yet counted, lowered when it does not, refused in one line
when not even a small cap fits."""

from __future__ import annotations

import pytest

from looop.home.errors import LooopError
from looop.web.server import BURSTS, MIN_CAP, RESERVE_FDS, Limits, fit_cap


def _needs(limits: Limits) -> int:
    return limits.max_connections + BURSTS * limits.backlog + RESERVE_FDS


@pytest.mark.parametrize("nofile", [20000, 1024])
def test_the_default_cap_fits_the_usual_limits(nofile: int) -> None:
    assert fit_cap(Limits(), nofile) == Limits()


@pytest.mark.parametrize("nofile", [512, 400, 300])
def test_a_low_limit_lowers_the_cap_until_it_fits(nofile: int) -> None:
    fit = fit_cap(Limits(client_timeout_s=3, max_head_bytes=4096), nofile)
    assert MIN_CAP <= fit.max_connections < Limits().max_connections
    assert _needs(fit) <= nofile
    assert (fit.client_timeout_s, fit.max_head_bytes) == (3, 4096)
    bigger = Limits(max_connections=fit.max_connections + 1)
    assert _needs(bigger) > nofile  # the largest that fits, not merely one that does


def test_a_limit_with_no_room_is_refused_in_one_line() -> None:
    with pytest.raises(LooopError) as e:
        fit_cap(Limits(), 200)
    assert "ulimit -n" in str(e.value) and "\n" not in str(e.value)


def test_the_backlog_stays_under_the_cap() -> None:
    for cap in (16, 17, 100, 256, 4096):
        assert Limits(max_connections=cap).backlog < cap
