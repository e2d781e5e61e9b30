from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from looop.home.textsafe import screen_text
from looop.spend.limits import MAX_AHEAD_S, find_limit
from tests.clocks import FixedClock

# 2026-11-23 06:40 UTC, a Monday
NOW = datetime(2026, 11, 23, 6, 40, tzinfo=UTC).timestamp()


def _at(*args: int, tz: str = "UTC") -> float:
    """A clock time as the CLIs say it (to the minute), plus the minute looop waits out."""
    zone = ZoneInfo(tz) if tz != "UTC" else UTC
    return datetime(*args, tzinfo=zone).timestamp() + 60  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "reset"),
    [
        # claude, print mode: the reset as unix seconds after a pipe
        (f"Claude AI usage limit reached|{int(NOW) + 3600}", NOW + 3600),
        # claude, the older human form: a clock time in a named zone, later today
        (
            "Claude usage limit reached. Your limit will reset at 9am (America/Chicago).",
            _at(2026, 11, 23, 9, 0, tz="America/Chicago"),
        ),
        # claude 2.x: a time already past today is tomorrow's
        (
            "You've hit your limit · resets 1:30am (Asia/Dhaka)",
            _at(2026, 11, 24, 1, 30, tz="Asia/Dhaka"),
        ),
        ("You\u2019ve hit your limit \u00b7 resets 6am", _at(2026, 11, 24, 6, 0)),
        ("You've hit your session limit · resets 9:15am", _at(2026, 11, 23, 9, 15)),
        # claude 2.1.330 with a subscription, as the real CLI printed it
        ("You've hit your 5-hour limit · resets 4:36pm (UTC)", _at(2026, 11, 23, 16, 36)),
        (
            "You\u2019ve reached your weekly limit \u00b7 resets Nov 27, 3pm",
            _at(2026, 11, 27, 15, 0),
        ),
        # codex: today's time, local
        (
            "■ You've hit your usage limit. Visit https://chatgpt.com/codex/settings/usage to "
            "purchase more credits or try again at 8:19 PM.",
            _at(2026, 11, 23, 20, 19),
        ),
        # codex: another day, with the year
        (
            "You've hit your usage limit. Upgrade to Plus to continue using Codex "
            "(https://chatgpt.com/explore/plus), or try again at Nov 28th, 2026 8:19 PM.",
            _at(2026, 11, 28, 20, 19),
        ),
        # codex, older: a duration
        (
            "You've hit your usage limit. Upgrade to Pro (https://openai.com/chatgpt/pricing) "
            "or try again in 2 days 17 hours 14 minutes.",
            NOW + 2 * 86400 + 17 * 3600 + 14 * 60,
        ),
        # the raw error body
        (
            '{"error":{"type":"usage_limit_reached","message":"The usage limit has been '
            f'reached","plan_type":"free","resets_at":{int(NOW) + 600}}}}}',
            NOW + 600,
        ),
        ('{"error":{"type":"usage_limit_reached","resets_in_seconds":900}}', NOW + 900),
    ],
)
def test_the_reset_time_each_cli_prints_is_found(text: str, reset: float) -> None:
    noise = "[06:39:58] · thinking\nsome earlier output with 10:00 in it\n"
    got = find_limit(noise + text + "\n", FixedClock(NOW, UTC))
    assert got is not None and got.reset == pytest.approx(reset)
    assert "limit" in got.said and "\n" not in got.said


@pytest.mark.parametrize(
    "text",
    [
        "",
        "API Error: 429 rate_limit_error: This request would exceed your account's rate limit.",
        "You've hit your usage limit. Try again later.",  # no time: the normal backoff
        f"Claude AI usage limit reached|{int(NOW) - 60}",  # already past (a stale banner)
        f"Claude AI usage limit reached|{int(NOW) + MAX_AHEAD_S + 60}",  # not believed
        "the tests resets at 9am daily; nothing hit a limit",
        "You've hit your usage limit. try again at 25:99 PM.",
    ],
)
def test_no_believable_reset_is_no_limit(text: str) -> None:
    assert find_limit(text, FixedClock(NOW, UTC)) is None


def test_the_last_message_wins_and_the_scan_is_bounded() -> None:
    old = f"Claude AI usage limit reached|{int(NOW) + 60}\n"
    new = f"Claude AI usage limit reached|{int(NOW) + 7200}\n"
    got = find_limit(old + "x" * 100 + "\n" + new, FixedClock(NOW, UTC))
    assert got is not None and got.reset == NOW + 7200
    assert (
        find_limit(new + "y" * 20000, FixedClock(NOW, UTC)) is None
    )  # far back in a huge log: not read


def test_a_tui_screen_reads_as_plain_lines() -> None:
    raw = (
        b"\x1b]0;claude\x07\x1b[2K\x1b[1G\x1b[31mYou've\x1b[1Chit\x1b[1Cyour\x1b[1C5-hour"
        b"\x1b[1Climit\x1b[39m \xc2\xb7 resets 9:15am\r\n\x1b[3;1H> "
    )
    text = screen_text(raw)
    assert "You've hit your 5-hour limit \u00b7 resets 9:15am" in text and "\x1b" not in text
    got = find_limit(text, FixedClock(NOW, UTC))
    # the time as said (ls shows it), and the minute looop waits out on top
    assert got is not None and got.said_at == _at(2026, 11, 23, 9, 15) - 60
    assert got.reset == got.said_at + 60
