"""The worker contract's verbs that looop answers outside the worker: which go home from a
worker away from home (SSH, a pod), and which go through a sandboxed box's door. One table
each, read by the carriers (remote/callhome.py, remote/boxdoor.py) and the answerer
(contract/requests.py); and the verbs a worker calls in a loop, served here without click."""

from __future__ import annotations

from typing import TYPE_CHECKING

from looop.home.clock import now_of

if TYPE_CHECKING:
    from looop.home.clock import Clock

# A worker away from home: every other verb runs where the worker is.
RELAYED = frozenset({"ask", "claim", "unclaim", "tell", "told", "cost"})
# A sandboxed worker: its box writes nothing of the data dir, so each verb that changes
# looop's state goes through the door (a flag and its own end besides the relayed ones).
BOX_VERBS = RELAYED | frozenset({"flag", "unflag", "kill"})
# the verbs that name the worker they act on by their first bare argument
SELF_NAMED = frozenset({"flag", "unflag", "kill"})

# The verbs a worker calls in a loop, served without click by the console entry: verb -> the
# home module whose `serve` reads its plain spellings and runs it. Every other spelling, and
# every verb a human types, is click's (cli/), which words --help and every mistake.
FAST = {
    "claim": "looop.human.leases",
    "unclaim": "looop.human.leases",
    "tell": "looop.human.leases",
    "told": "looop.human.tellbox",
    "cost": "looop.spend.record",  # `cost report …` only: the span reports are a human's
}


def serve(argv: list[str], env: dict[str, str], clock: Clock | None) -> bool:
    """A contract verb in its plain spelling, run: True once served; False for click."""
    name = FAST.get(argv[0]) if argv else None
    if name is None:
        return False
    face = __import__(name, fromlist=("serve",))  # lazy: a verb loads its own module alone
    served: bool = face.serve(argv, env, now_of(clock))
    return served
