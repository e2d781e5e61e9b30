"""The fleet table in real headless Chromium redraws only what changed: a worker's new note
shows in its row, and every other row (and the changed row's own <tr>) keeps its DOM nodes
across the page's polls, which ask with the fleet's ETag."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from looop.home import store
from looop.sessions.client import kill, wait
from looop.sessions.spawner import spawn
from looop.sessions.state import SessionError
from tests.clocks import FixedClock
from tests.helpers import clean_env, wait_until
from tests.web.conftest import serving
from tests.web.test_browser import browser_parts as browser_parts  # the fixture, shared
from tests.web.test_browser import driver as driver

pytestmark = pytest.mark.timeout(120)
IDS = ("w1", "w2", "w3")


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Three live `cat` workers and `looop web` serving their home (a real process)."""
    data = tmp_path / "data"
    data.mkdir()
    env = clean_env(tmp_path, data, LOOOP_CONFIG=str(tmp_path / "config.json"))
    for sid in IDS:
        spawn(data, sid, ["cat"], cwd=data, env=dict(os.environ))
    try:
        with serving(env) as url:
            yield {"url": url, "data": data}
    finally:
        for sid in IDS:
            with contextlib.suppress(SessionError):
                kill(data, sid)
        for sid in IDS:
            wait(data, sid, 30, FixedClock())


MARK = """
for (const tr of document.querySelectorAll('#fleet tbody tr')) {
  tr.looopMark = tr.dataset.id; tr.firstElementChild.looopMark = tr.dataset.id;
}"""
MARKED = """
return [...document.querySelectorAll('#fleet tbody tr')].map((tr) =>
  [tr.dataset.id, tr.looopMark === tr.dataset.id,
   tr.firstElementChild.looopMark === tr.dataset.id, tr.firstElementChild.textContent]);"""


def test_a_changed_row_is_redrawn_and_the_others_keep_their_nodes(
    fleet: dict[str, Any], driver: Any
) -> None:
    driver.get(fleet["url"])

    def rows() -> list[list[Any]]:
        return list(driver.execute_script(MARKED))

    wait_until(lambda: [r[0] for r in rows()] == ["pulse", *IDS], 30, "the fleet drawn")
    driver.execute_script(MARK)
    store.atomic_write(fleet["data"] / "sessions" / "w2" / "note", "look here")
    # the page polls every 5 s (no event tells of a note): the new note shows within a few
    wait_until(lambda: "look here" in rows()[2][3], 30, "w2's note drawn")
    got = {r[0]: (r[1], r[2]) for r in rows()}
    assert got["w2"] == (True, False)  # its <tr> kept, its cells made again
    for sid in ("pulse", "w1", "w3"):
        assert got[sid] == (True, True), sid  # untouched: the same nodes


CELLS = """
const box = document.querySelector('#fleet-box').getBoundingClientRect();
return [...document.querySelectorAll('#fleet tbody tr')].map((tr) =>
  [...tr.children].map((td) => { const r = td.getBoundingClientRect();
    return [r.left, r.right, r.top, r.bottom, box.left, box.right]; }));"""


@pytest.mark.parametrize(("width", "height"), [(1400, 900), (400, 800)])
def test_the_fleet_fits_its_card_and_no_cell_covers_another(
    fleet: dict[str, Any], driver: Any, width: int, height: int
) -> None:
    """At a desktop's and a phone's width every cell of every row lies inside the card, and
    no two cells of a row overlap (a narrow card wraps each row into labelled cells)."""
    for sid in IDS:  # a flag's note rides on the id: the widest first column a fleet shows
        note = "waiting for the release checklist to be signed off by the team"
        store.atomic_write(fleet["data"] / "sessions" / sid / "note", note)
    driver.set_window_size(width, height)
    driver.get(fleet["url"])
    wait_until(lambda: len(driver.execute_script(CELLS)) == 1 + len(IDS), 30, "the fleet drawn")
    for row in driver.execute_script(CELLS):
        for n, (left, right, top, bottom, box_left, box_right) in enumerate(row):
            assert box_left - 0.5 <= left and right <= box_right + 0.5, (width, n, row)
            for o_left, o_right, o_top, o_bottom, _, _ in row[n + 1 :]:
                apart = right <= o_left + 0.5 or o_right <= left + 0.5
                apart = apart or bottom <= o_top + 0.5 or o_bottom <= top + 0.5
                assert apart, (width, n, row)


# set before the page's own scripts: when each view is asked for, and when the live stream
# opened (this listener is the stream's first)
READS = """
window.__reads = []; window.__opened = null;
const fetch0 = window.fetch.bind(window);
window.fetch = (u, o) => {
  window.__reads.push([String(u), performance.now()]); return fetch0(u, o); };
const ES = window.EventSource;
window.EventSource = function (u, o) {
  const es = new ES(u, o);
  if (String(u) === '/api/v1/events') es.addEventListener('open', () => {
    if (window.__opened === null) window.__opened = performance.now(); });
  return es;
};
window.EventSource.CLOSED = ES.CLOSED;"""


def test_the_views_are_read_once_the_live_stream_is_open(
    fleet: dict[str, Any], driver: Any
) -> None:
    """The page reads its views when the live stream has opened, not before as well: a change
    after the stream opened is pushed, so none falls between the two, and a page load asks
    the server for each view once, not twice (at 300 workers the second round's reads held
    the first one's fleet up)."""
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": READS})
    driver.get(fleet["url"])
    reads: list[list[Any]] = []

    def read_state() -> bool:  # the fleet came with the page: /state is the round's sign
        reads[:] = driver.execute_script("return window.__reads")
        return any(url == "/api/v1/state" for url, _ in reads)

    wait_until(read_state, 30, "the views read")
    opened = driver.execute_script("return window.__opened")
    states = [at for url, at in reads if url == "/api/v1/state"]
    assert opened is not None and states, (opened, reads)
    assert min(states) >= opened, (opened, reads)  # no round of reads before the stream


def test_the_fleet_comes_with_the_page(fleet: dict[str, Any], driver: Any) -> None:
    """The page draws the fleet from the rows it was served with, not after a round of reads:
    with every /api/v1 read and stream held back, the rows are drawn all the same,
    and a note that looks like markup is shown as its text (it cannot end the rows' script)."""
    note = "</script><b id=planted>x</b><!--"
    store.atomic_write(fleet["data"] / "sessions" / "w2" / "note", note)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/api/v1/*"]})
    driver.get(fleet["url"])
    rows: list[list[Any]] = []

    def drawn() -> bool:
        rows[:] = driver.execute_script(MARKED)
        return [r[0] for r in rows] == ["pulse", *IDS]

    held = "return !!document.getElementById('fleet-read')"
    wait_until(drawn, 10, f"the fleet drawn (rows held: {driver.execute_script(held)})")
    assert rows[2][3] == f"w2 ⚑ {note}", rows
    assert driver.execute_script("return document.getElementById('planted')") is None
