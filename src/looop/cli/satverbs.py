"""The satellite's heavier verbs, behind one door `looop satellite` opens by the verb: a
start's (`hello`, `spawn`, `verify`) and a worker's `diff` (remote/ssh/start.py), and a
far worker's review and landing (`review`, `land`: act/landthere.py). `ls`, `screen`, `send`
and the rest answer from remote/ssh/satellite.py without loading any of it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from looop.act.landthere import there_verb
from looop.remote.ssh.satellite import CHANGE_VERBS, START_VERBS, THERE_VERBS
from looop.remote.ssh.start import start_verb

if TYPE_CHECKING:
    from looop.remote.ssh.satellite import Verbs


def verbs_for(op: str) -> Verbs | None:
    """What serves `op` (None: satellite.py's own verbs)."""
    if op in START_VERBS or op in CHANGE_VERBS:
        return start_verb
    if op in THERE_VERBS:
        return there_verb
    return None
