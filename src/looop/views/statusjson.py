"""`looop status --json`'s fields from v1.0's `state --json` on top of status's own
(views/status.py): the live world hash, every snapshot's reading, the pending asks and a longer
journal tail. Only `--json` runs it; plain status loads it with its text (views/statustext.py) at
no measured cost (4 small modules, within 1% of a plain status's time); status's other readers
(tui, web, the pulse) import views/status.py alone."""

from __future__ import annotations

from typing import TYPE_CHECKING

from looop.home import jsonio, store, where
from looop.home.boxfolder import pending_asks
from looop.home.worldhash import world_hash_at
from looop.views.beatlog import tail
from looop.views.status import file_stem, json_files

if TYPE_CHECKING:
    from typing import Any

    from looop.views.shapes import StatusView


V1_JOURNAL_LINES = 20  # v1.0's `state --json` journal_tail length


def add_v1_fields(st: StatusView) -> StatusView:
    """The fields v1.0's `looop state --json` has, with v1.0's meaning, on top of ours: the
    live world hash, every snapshot's parsed reading, the pending ask records and the last 20
    journal lines. Only `--json` pays for these reads (plain status stays as light as it was)."""
    data = st["data_dir"]
    snaps: dict[str, Any] = {}
    for name, path in json_files(where.join(data, where.SNAPSHOTS)):
        try:
            snaps[file_stem(name)] = jsonio.safe_loads(store.read_text(path) or "")
        except (OSError, ValueError):
            continue  # unreadable or not JSON (or NaN, which JSON cannot carry): left out
    asks = pending_asks(data)
    return {
        **st,
        "world_hash": world_hash_at(data),
        "snapshots": snaps,
        "asks": asks,
        "ask_ids": [str(a.get("id")) for a in asks],
        "journal_tail": tail(where.join(data, where.JOURNAL), V1_JOURNAL_LINES),
    }
