"""What the loop waits for after the wall clock stepped back (the end of the soak's hour
ahead, an NTP fix): a wait stamped in the other clock regime never lasts longer than its own
length — the decide cap's rolling hour, a noop's revisit TTL (issue 51, item 1)."""

from __future__ import annotations

from looop.home.paths import Paths
from looop.loop import guards
from looop.spend import statusspend as cost

STEP = 3600  # the soak's: an hour ahead for a while, then back to real time
CAP = 10


def test_decides_made_an_hour_ahead_leave_the_cap_an_hour_after_the_clock_came_back(
    paths: Paths,
) -> None:
    real = 1_750_000_000.0
    for i in range(CAP):  # the cap filled while the clock was an hour ahead
        cost.note_decide(str(paths.data), real + STEP + i)
    back = real + 60  # a minute later (real time) the clock steps back
    assert cost.decide_cap(str(paths.data), back, CAP)[0] == CAP  # they did happen this hour
    wait = cost.decide_cap(str(paths.data), back, CAP)[1]
    assert 0 < wait <= cost.DECIDE_WINDOW_S, wait  # not an hour plus the step
    assert cost.decide_cap(str(paths.data), back + cost.DECIDE_WINDOW_S, CAP)[0] == 0
    cost.note_decide(str(paths.data), back + cost.DECIDE_WINDOW_S)  # and the loop decides again
    assert cost.decide_cap(str(paths.data), back + cost.DECIDE_WINDOW_S, CAP)[0] == 1


def test_a_held_cap_is_held_no_longer_than_its_hold_after_a_step_back(paths: Paths) -> None:
    ahead = 1_750_000_000.0 + STEP
    paths.decide_ledger.write_text("not json")  # held closed, stamped while ahead
    cost.decide_cap(str(paths.data), ahead, CAP)[0]
    back = ahead - STEP + 60
    assert cost.decide_cap(str(paths.data), back, CAP)[1] <= cost.DECIDE_HOLD_S


def test_a_noop_judged_an_hour_ahead_is_revisited_a_ttl_after_the_clock_came_back(
    paths: Paths,
) -> None:
    real, ttl = 1_750_000_000.0, 600
    guards.note_noop(paths, real + STEP, "w1")  # the noop, while the clock was ahead
    back = real + 60
    assert not guards.noop_expired(paths, "w1", back, ttl)  # just judged: not yet
    assert not guards.noop_expired(paths, "w1", back + ttl - 1, ttl)
    assert guards.noop_expired(paths, "w1", back + ttl, ttl)  # not a TTL plus the step


def test_a_noop_judged_before_a_forward_step_is_revisited_at_once(paths: Paths) -> None:
    real, ttl = 1_750_000_000.0, 600
    guards.note_noop(paths, real, "w1")
    assert not guards.noop_expired(paths, "w1", real + 60, ttl)
    assert guards.noop_expired(paths, "w1", real + 60 + STEP, ttl)  # one look more, no harm
