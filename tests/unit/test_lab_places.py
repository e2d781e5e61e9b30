"""The SSH lab's two chains (tests/hosts/) run side by side, each with a lab of its own: their
places never share a user, a namespace tag or an address, and a bad place is one line."""

from __future__ import annotations

import pytest

from tests.hosts.conftest import place
from tests.hosts.lab import check_params

# every host a chain's labs bring up: h1..h3 of its lab and the bare h4 of test_sandboxed_host
HOSTS = range(1, 5)


def _taken(chain: str) -> tuple[set[str], set[str], set[int]]:
    p = place(chain)
    users = {f"{p.users}{i}" for i in HOSTS}
    tags = {p.tag(), p.tag("sbx")}
    octets = {p.base + i for i in HOSTS}
    check_params("10.231", p.users, p.tag(), max(HOSTS), p.base)
    check_params("10.231", p.users, p.tag("sbx"), max(HOSTS), p.base)
    return users, tags, octets


def test_the_two_chains_labs_share_no_user_tag_or_address() -> None:
    a, b = _taken("hosts"), _taken("hosts-b")
    for mine, theirs in zip(a, b, strict=True):
        assert len(mine) == len(theirs) and not mine & theirs, (mine, theirs)


def test_the_first_chain_keeps_the_classic_lab() -> None:
    users, tags, octets = _taken("hosts")
    assert tags == {"looop", "sbx"} and octets == {1, 2, 3, 4}
    assert all(u[:-1] == place("hosts").users for u in users)


@pytest.mark.parametrize("base", [-1, 251])
def test_a_base_past_the_subnet_is_refused_in_one_line(base: int) -> None:
    with pytest.raises(ValueError) as e:
        check_params("10.231", "looopt", "looop", 4, base)
    assert str(e.value).startswith(f"bad lab base {base}:") and "\n" not in str(e.value)
