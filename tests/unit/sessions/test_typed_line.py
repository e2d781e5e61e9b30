"""sessions/client.send: which input is typed in two writes (the text, then Enter once it shows)
and which in one, read off the requests a supervisor would get (its replies faked): the wait
for the text to show is one `echo` request the supervisor answers (sessions/control.await_echo)."""

from __future__ import annotations

from typing import Any

import pytest

from looop.sessions import client as control


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """The requests sent."""
    got: list[tuple[str, Any]] = []

    def request(data: str, sid: str, op: str, **fields: Any) -> Any:
        if op == "send":
            what = fields.get("text", fields.get("data_b64"))
            got.append((op, what))
            return {"sent": len(str(what)), "offset": 100}
        if op == "echo":
            got.append((op, (fields["tail"], fields["offset"], fields["timeout"])))
            return {"echoed": True}
        raise AssertionError(f"unexpected request {op}")

    monkeypatch.setattr(control, "request", request)
    return got


def test_a_line_with_enter_is_typed_then_entered_once_it_shows(asked: list[Any]) -> None:
    reply = control.send("/d", "w1", "fix the test\r", False)
    # one wait for "fixthetest" after the log's offset, then the Enter
    wait = ("echo", ("fixthetest", 100, control.ECHO_WAIT_S))
    assert asked == [("send", "fix the test"), wait, ("send", "\r")]
    assert reply == {"sent": len("fix the test\r"), "offset": 100}  # as one write said it


@pytest.mark.parametrize(
    "text",
    ["\r", "  \r", "typed only", b"\x03\r", "\x1b\r"],
    ids=["bare Enter", "spaces", "no Enter", "C-c Enter", "Esc Enter"],
)
def test_input_with_nothing_to_see_before_its_enter_is_one_write(
    asked: list[Any], text: str | bytes
) -> None:
    control.send("/d", "w1", text, False)
    assert [op for op, _ in asked] == ["send"]


def test_a_line_mode_send_is_one_write(asked: list[Any]) -> None:
    control.send("/d", "w1", "echo hi\r", True)  # the supervisor adds its newline
    assert [op for op, _ in asked] == ["send"]


def test_a_session_that_ends_during_the_wait_still_has_its_enter_asked(
    asked: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Enter's own request says the session is over (the CLI's one line), not the wait."""
    faked = control.request

    def ended(data: str, sid: str, op: str, **fields: Any) -> Any:
        if op == "echo":
            raise control.SessionError("session w1 has already finished")
        return faked(data, sid, op, **fields)

    monkeypatch.setattr(control, "request", ended)
    control.send("/d", "w1", "fix the test\r", False)
    assert [op for op, _ in asked] == ["send", "send"]
