"""The worker contract's verbs that looop answers outside the worker: which go home from a
worker away from home (SSH, a pod), and which go through a sandboxed box's door. One table
each, read by the carriers (remote/callhome.py, remote/boxdoor.py) and the answerer
(core/contract.py)."""

from __future__ import annotations

# A worker away from home: every other verb runs where the worker is.
RELAYED = frozenset({"ask", "claim", "unclaim", "tell", "told", "cost"})
# A sandboxed worker: its box writes nothing of the data dir, so each verb that changes
# looop's state goes through the door (a flag and its own end besides the relayed ones).
BOX_VERBS = RELAYED | frozenset({"flag", "unflag", "kill"})
# the verbs that name the worker they act on by their first bare argument
SELF_NAMED = frozenset({"flag", "unflag", "kill"})
