"""The watch's review pane reads a worker's change through its Backend (the one lookup,
remote.worker_away), wherever the worker runs: a worker on a host is reviewed from there, not
refused by a host record the pane looked for itself."""

from __future__ import annotations

import json

import pytest

from looop.core.context import Ctx
from looop.remote import rooms
from looop.tui.review import read_review
from looop.workers.errors import HostUnreachable
from looop.workers.review import Review
from tests.fakebackend import FakeBackend


def test_a_far_workers_review_comes_from_its_backend(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = ctx.paths.host_record("w9")
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"host": "h9"}))
    away = FakeBackend()
    far = staticmethod(lambda c, wid: away if wid == "w9" else None)
    monkeypatch.setattr(rooms(), "remote_of", far)
    assert read_review(ctx, "w9") == away.review("w9").to_json()
    assert away.calls == [("review", "w9")] * 2


def test_a_hosts_silence_is_the_panes_one_line(ctx: Ctx, monkeypatch: pytest.MonkeyPatch) -> None:
    class Silent(FakeBackend):
        def review(self, sid: str) -> Review:
            raise HostUnreachable(f"host h9 does not answer (worker {sid})")

    record = ctx.paths.host_record("w9")
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"host": "h9"}))
    monkeypatch.setattr(rooms(), "remote_of", staticmethod(lambda c, wid: Silent()))
    with pytest.raises(HostUnreachable, match="does not answer"):
        read_review(ctx, "w9")
