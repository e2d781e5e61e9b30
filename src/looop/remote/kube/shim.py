"""`$LOOOP_BIN` inside a Kubernetes pod: the contract verbs (ask, claim, unclaim, tell, told,
cost) go home to the web API's POST /api/v1/contract with the worker's own token; every other
verb (flag, kill, …) runs on the pod's own looop.

The way home is the pod's `…-home` Secret: LOOOP_HOME_URL (http or https; a path prefix is
kept) and LOOOP_HOME_TOKEN (the worker's token, `lw1.…`). TLS is verified against the
system's CAs, or the PEM bundle named by LOOOP_HOME_CA. Without a way home the home-bound
verbs refuse at once, in one line, exit 3, and tell/told stay in the pod.

http.client and ssl load only once a verb goes home (homecall.py): workers call these verbs
often."""

from __future__ import annotations

import os
import sys

from looop.contract.verbs import RELAYED

# Without a way home these refuse: nobody reads the pod's own mailbox, leases or ledger.
HOME_VERBS = ("ask", "claim", "unclaim", "cost")


def no_way_home(verb: str) -> str:
    return (
        f"looop: '{verb}' cannot reach the home from this pod (it was started without a way "
        "home: LOOOP_HOME_URL and LOOOP_HOME_TOKEN): raise a flag ($LOOOP_BIN flag ID) and "
        "wait for a human at your terminal\n"
    )


def main(argv: list[str], real: str) -> int:
    env = dict(os.environ)
    verb = argv[0] if argv else ""
    if verb in RELAYED:
        if env.get("LOOOP_HOME_URL") and env.get("LOOOP_HOME_TOKEN"):
            # lazy: http.client and ssl only once a verb goes home (every other verb execs)
            from looop.remote.kube.homecall import go_home

            return go_home(argv, env)
        if verb in HOME_VERBS:
            sys.stderr.write(no_way_home(verb))
            return 3
    os.execv(real, [real, *argv])
    return 127
