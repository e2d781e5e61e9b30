"""The SSH lab's places (tests/hosts/): every lab on a machine holds a slot of its own, so two
test runs side by side (two worktrees) and the two chains of one run never share a user, a
namespace tag or an address; a bad place is one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hosts.conftest import LAB_USERS, place
from tests.hosts.lab import SLOTS, Slot, check_params, claim_slot, release_slot

# every host a lab brings up: h1..h3 and the bare h4 of test_sandboxed_host
HOSTS = range(1, 5)


def _taken(slot: Slot) -> tuple[set[str], set[str], set[int]]:
    p = place(slot)
    users = {f"{p.users}{i}" for i in HOSTS}
    tags = {p.tag(), p.tag("sbx"), p.tag("side")}
    octets = {p.base + i for i in HOSTS}
    for tag in tags:
        check_params("10.231", p.users, tag, max(HOSTS), p.base)
    return users, tags, octets


def test_no_two_slots_share_a_user_tag_or_address() -> None:
    users: set[str] = set()
    tags: set[str] = set()
    octets: set[int] = set()
    for k in range(SLOTS):
        u, t, o = _taken(Slot(k))
        assert len(u) == len(o) == len(HOSTS) and len(t) == 3, (k, u, t, o)
        assert not (u & users or t & tags or o & octets), k
        users, tags, octets = users | u, tags | t, octets | o


def test_the_first_slot_keeps_the_classic_lab() -> None:
    users, tags, octets = _taken(Slot(0))
    assert tags == {"looop", "sbx", "side"} and octets == {1, 2, 3, 4}
    assert users == {f"{LAB_USERS}{i}" for i in HOSTS}


def test_labs_side_by_side_hold_their_own_slots_and_a_freed_one_is_taken_again(
    tmp_path: Path,
) -> None:
    first, second = claim_slot(tmp_path), claim_slot(tmp_path)
    try:
        assert (first.number, second.number) == (0, 1)
        assert place(first).users != place(second).users
        release_slot(first)  # that run ended (or was killed: the kernel drops its lock)
        third = claim_slot(tmp_path)
        assert third.number == 0
        release_slot(third)
    finally:
        release_slot(second)


def test_a_machine_with_every_slot_held_says_so_in_one_line(tmp_path: Path) -> None:
    held = [claim_slot(tmp_path, slots=2) for _ in range(2)]
    try:
        with pytest.raises(RuntimeError) as e:
            claim_slot(tmp_path, slots=2)
        assert "every SSH lab slot" in str(e.value) and "\n" not in str(e.value)
    finally:
        for s in held:
            release_slot(s)


@pytest.mark.parametrize("base", [-1, 251])
def test_a_base_past_the_subnet_is_refused_in_one_line(base: int) -> None:
    with pytest.raises(ValueError) as e:
        check_params("10.231", "looopt", "looop", 4, base)
    assert str(e.value).startswith(f"bad lab base {base}:") and "\n" not in str(e.value)
