"""The door of a home's sandboxed workers: a box writes nothing of the data dir, so every
contract verb it speaks (BOX_VERBS) comes here as one request through the box's own proxy,
served by the home's network filter (sandbox/netfilter.py) outside every box. The box is known
by the port and proxy credentials it came in with (sandbox/netproxy.py), never by what the
request says; each argument is held to that worker, and the verb is answered once per key: a
plain one in the filter's own process, the rest as a run of the home's own `looop`
(contract/answering.py, contract/requests.py). An unsandboxed worker's door is its session host's
(sessions/hostdoor.py), answering through the same module."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from looop.contract.answering import Refusal, home_env
from looop.contract.requests import Answerer, Home
from looop.contract.verbs import BOX_VERBS
from looop.home import jsonio
from looop.home.clock import SystemClock
from looop.home.paths import Paths

DOOR_WAIT_S = 25.0  # a door call waits this long for its run, then answers 202 (ask again)


def box_door(
    home: Home, speaking: Callable[[str], bool], wait_s: float = DOOR_WAIT_S
) -> Callable[[str, bytes], tuple[int, bytes]]:
    """The door of the home's sandboxed workers (sandbox/netproxy.py's `Door`): a request's body
    answered as `worker`, the worker whose box it came from, while that box still runs
    (`speaking`). The request may name its worker only as that one; every argument is held
    to it (self_only), and the verbs are the box's (BOX_VERBS)."""

    def allowed(worker: str) -> str | None:
        return None if speaking(worker) else f"worker {worker}'s box has ended: its door is shut"

    answerer = Answerer(home, allowed, self_only=True, verbs=BOX_VERBS)

    def door(worker: str, body: bytes) -> tuple[int, bytes]:
        try:
            raw = jsonio.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return 400, _said("the door takes one JSON object (contract protocol 1)")
        if isinstance(raw, dict):
            named = raw.get("worker")
            if named not in (None, "", worker):
                return 403, _said(f"this box speaks for worker {worker} only")
            raw["worker"] = worker
        try:
            req = answerer.check(raw)
        except Refusal as e:
            return e.status, _said(e.message)
        run = answerer.start(req)
        if not run.done.wait(wait_s):
            return 202, b'{"pending": true}'
        return 200, jsonio.dumps(run.answer).encode()

    return door


class HomeDoor:
    """`box_door` for the home in `data`, on the home's environment (`home_env`): the filter's
    (sandbox/netfilter.py), opened on the first knock."""

    def __init__(self, data: str, env: Mapping[str, str], speaking: Callable[[str], bool]):
        self.data, self.env, self.speaking = data, env, speaking
        self.lock = threading.Lock()
        self.door: Callable[[str, bytes], tuple[int, bytes]] | None = None

    def __call__(self, worker: str, body: bytes) -> tuple[int, bytes]:
        with self.lock:
            if self.door is None:
                env = home_env(self.env)
                paths = Paths.resolve(env, Path(self.data))
                home = Home(paths, env, SystemClock(), env.get("LOOOP_BIN", "looop"))
                self.door = box_door(home, self.speaking)
        return self.door(worker, body)


def _said(line: str) -> bytes:
    return jsonio.dumps({"error": line}).encode()
