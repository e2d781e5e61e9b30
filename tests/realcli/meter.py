"""A worker's spend as looop meters it (one `looop tick` a look) against what the scripted
model server reported, priced: shared by the spend tests and the resume tests that walk a
resumed worker anyway (a start of a real TUI costs seconds of CPU, opencode's ten)."""

from __future__ import annotations

import json

from looop.sessions.client import expect, send, send_keys
from looop.spend.prices import lookup_price, price_table, price_tokens
from tests.realcli.harness import Rig
from tests.realcli.test_resume import _await, _screen

# what the harness's opencode config charges per 1M tokens for its scripted model
OPENCODE_RATES = {"input": 3.0, "output": 15.0}


def worker_rows(rig: Rig, sid: str) -> list[dict[str, object]]:
    p = rig.ctx.paths.cost_ledger
    if not p.exists():
        return []
    rows = [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
    return [r for r in rows if r.get("kind") == "worker" and r.get("id") == sid]


def expected(rig: Rig, marker: str) -> tuple[float, set[str]]:
    """The server's usage of the conversation's turns (those carrying the brief) priced."""
    table = price_table()
    usd = 0.0
    models = set()
    for model, in_tok, out_tok, body in list(rig.server.usage):
        if marker not in body:
            continue  # a side request: no turn of the conversation
        if rig.cli == "opencode" and '"tools"' not in body:
            continue  # its title request quotes the brief, and opencode keeps no cost of it
        models.add(model)
        row = OPENCODE_RATES if rig.cli == "opencode" else lookup_price(table, model)[1]
        usd += price_tokens(row, in_tok, 0, 0, out_tok)
    return usd, models


def evidence(rig: Rig) -> str:
    """What the CLI wrote and what the meter made of it (a failure's message)."""
    sp = rig.ctx.paths.data / ".worker-meter.json"
    state = sp.read_text(errors="replace")[:2000] if sp.exists() else "(none)"
    recs = [p.read_text()[:600] for p in (rig.ctx.paths.data / "resume").glob("*.json")]
    state += f"; records {recs}"
    names = sorted(str(p.relative_to(rig.home)) for p in rig.home.rglob("*") if p.is_file())
    names = [n for n in names if "sessions" in n or "storage" in n or ".db" in n][:60]
    return f"state {state}; files {names}; usage {[u[:3] for u in rig.server.usage]}"


class Meter:
    """Worker `sid`'s metered spend, its conversation known by `marker` in every turn."""

    def __init__(self, rig: Rig, sid: str, marker: str = "ECHO:brief42") -> None:
        self.rig, self.sid, self.marker = rig, sid, marker

    def metered(self) -> float:
        done = self.rig.looop("tick")
        assert done.returncode == 0, done.stderr
        return sum(float(str(r["cost_usd"])) for r in worker_rows(self.rig, self.sid))

    def turns(self) -> int:
        """The conversation's turns the server answered (each carries the brief)."""
        return sum(1 for u in list(self.rig.server.usage) if self.marker in u[3])

    def settles(self, after: int, what: str) -> float:
        """Once the server answered more than `after` turns, the beat meters what they
        cost: returned. Waiting on the meter is also how the test knows the turn is over."""

        def done() -> bool:
            return self.turns() > after and abs(self.metered() - self.want()) < 1e-5

        try:
            _await(done, 90, what)
        except AssertionError as e:
            raise AssertionError(
                f"{e}: want {self.want():.6f}, metered {self.metered():.6f}; {evidence(self.rig)}"
            ) from None
        return self.want()

    def want(self) -> float:
        return expected(self.rig, self.marker)[0]

    def another_turn(self, before: float) -> float:
        """One more turn of the same run, typed into the TUI: it adds only itself."""
        root, sid, clock = self.rig.ctx.paths.data, self.sid, self.rig.ctx.clock
        n = self.turns()
        send(root, sid, "And again. ECHO:more7", newline=False)
        expect(root, sid, "ECHO:more7", screen=True, timeout_s=60, clock=clock)
        send_keys(root, sid, ["Enter"])
        code, _, _ = expect(root, sid, "ANSWER:more7", screen=True, timeout_s=90, clock=clock)
        assert code == 0, _screen(root, sid)
        both = self.settles(n, f"{self.rig.cli}'s later turn metered")
        assert both > before
        # further beats add nothing: no turn of either run is counted twice
        assert abs(self.metered() - both) < 1e-5
        return both
