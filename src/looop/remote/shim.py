"""A remote worker's `looop`: the contract verbs (ask, claim, unclaim, tell, told, cost) go
home through the relay socket the SSH master forwards — or, from inside srt (no unix sockets
there), through its drop box and the host's bridge (remote/ssh/boxed.py); in a Kubernetes pod,
to the web API with the worker's own token (LOOOP_HOME_URL, LOOOP_HOME_TOKEN: the pod's `…-home`
Secret; http.client and ssl load only then, remote/kube/homecall.py). Every other verb runs
here. A pod without a way home refuses its home-bound verbs at once, in one line, exit 3
(nobody reads the pod's own mailbox, leases or ledger); tell/told stay in the pod.

Import-light (os, sys, socket, json): workers call these verbs often. Each request carries a
key chosen here and kept across retries, so a link that drops mid-verb is retried until the
home answers, and the home runs it once (remote/callhome.py, contract/requests.py)."""

from __future__ import annotations

import os
import socket
import sys
import time

from looop.contract.verbs import RELAYED
from looop.remote.callhome import PENDING, Pending, answer_of, call, new_key, read_all, request


def over_socket(path: str, req: bytes) -> dict[str, object] | None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        s.sendall(req)
        s.shutdown(socket.SHUT_WR)
        buf = read_all(s, sys.maxsize)
    except OSError:
        return None
    finally:
        s.close()
    return answer_of(buf)  # None when cut mid-answer: ask again with the same key


DROP_WAIT_S = 20.0  # how long one attempt waits for the bridge's answer
DROP_POLL_S = 0.02


def _dropped(box: str, key: str, req: bytes) -> dict[str, object] | Pending | None:
    """One attempt through the drop box: the request put down (unless it is there already,
    taken or answered), then its answer waited on. PENDING: the bridge holds it (the home has
    no answer yet); None: no bridge took it (the home is out of reach)."""
    base = os.path.join(box, key)
    if not any(os.path.lexists(base + e) for e in (".req", ".taken", ".ans")):
        tmp = os.path.join(box, f".{key}.tmp")
        with open(tmp, "wb") as f:
            f.write(req)
        os.replace(tmp, base + ".req")
    end = time.monotonic() + DROP_WAIT_S
    while time.monotonic() < end:
        try:
            with open(base + ".ans", "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            time.sleep(DROP_POLL_S)
            continue
        os.unlink(base + ".ans")
        return answer_of(raw)  # None: not an answer, so it is asked again
    return PENDING if os.path.lexists(base + ".taken") else None


def relay(argv: list[str], env: dict[str, str]) -> int:
    box = env.get("LOOOP_CALLHOME_DIR", "")
    key = new_key()
    req = request(argv, env.get("LOOOP_SESSION_ID", ""), key, sys.stdin)
    if box:
        return call(argv, lambda: _dropped(box, key, req), "the host's bridge")
    path = env.get("LOOOP_RELAY_SOCK", "")
    return call(argv, lambda: over_socket(path, req), path)


def script(python: str, pod_looop: str | None = None) -> str:
    """The `looop` file a remote worker runs: this module's `main` under the host's python
    (`pod_looop`: the pod's own looop, in a Kubernetes pod). Written at every start and
    refreshed at every fresh link (satellite's hello), so a host upgraded under a live worker
    never leaves its shim naming a module that moved."""
    run = f"raise SystemExit(main(sys.argv[1:]{'' if pod_looop is None else f', {pod_looop!r}'}))"
    return f"#!{python}\nimport sys\nfrom {__name__} import main\n{run}\n"


def main(argv: list[str], pod_looop: str | None = None) -> int:
    env = dict(os.environ)
    verb = argv[0] if argv else ""
    if verb in RELAYED and (env.get("LOOOP_RELAY_SOCK") or env.get("LOOOP_CALLHOME_DIR")):
        return relay(argv, env)
    if verb in RELAYED and env.get("LOOOP_HOME_URL") and env.get("LOOOP_HOME_TOKEN"):
        # lazy: http.client and ssl only once a pod's verb goes home (every other verb execs)
        from looop.remote.kube.homecall import go_home

        return go_home(argv, env)
    if pod_looop is not None and verb in ("ask", "claim", "unclaim", "cost"):
        sys.stderr.write(
            f"looop: '{verb}' cannot reach the home from this pod (it was started without a "
            "way home: LOOOP_HOME_URL and LOOOP_HOME_TOKEN): raise a flag ($LOOOP_BIN flag ID) "
            "and wait for a human at your terminal\n"
        )
        return 3
    real = pod_looop or env.get("LOOOP_REAL_BIN", "looop")
    os.execv(real, [real, *argv])
    return 127
