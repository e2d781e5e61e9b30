"""The decide's meter: fed a runner's stdout line by line, it reads the run's spend from whichever
built-in stream shape carries it (RunnerProfile.stream), or a profile's own, or a configured
cost spec."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from looop.home import jsonio
from looop.home.config import Runner
from looop.runners import RUNNERS
from looop.runners.runnerprofile import RunnerProfile
from looop.spend import sane_usd
from looop.spend.prices import command_model, lookup_price, price_table, price_tokens

_MAX_TOKENS = 10**12


# the event types a cost is summed from, in the order one wins over the next, and the shape
# of each ("step" wins only after the "thread" totals: _pick)
_SOURCES = {
    "result": "result",
    "message_end": "agent",
    "turn_end": "agent",
    "agent_end": "agent",
    "step_finish": "",
}
# Top-level event types a built-in meter reads ("thread" its own two); every other line is
# skipped unparsed.
_BUILTIN_TYPES = frozenset(_SOURCES).union({"thread.started", "turn.completed"})
_OBJECT_START = re.compile(r"\s*\{")
_COMPACT = '{"type":"'
_PLAIN_TYPE = re.compile(r"[A-Za-z0-9_.:-]+")  # a type no JSON writer escapes
_MISSING = object()


def _count(v: Any) -> int | None:
    """A token count: a whole, non-negative, plausible JSON number."""
    if isinstance(v, float) and v.is_integer():  # never true of inf or nan
        v = int(v)
    return v if type(v) is int and 0 <= v <= _MAX_TOKENS else None


def _dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _n(d: Mapping[str, Any], key: str) -> int:
    return _count(d.get(key)) or 0


def parse_pointer(pointer: str) -> tuple[str, ...]:
    """RFC 6901: '' is the whole document, else '/'-separated tokens with ~1 -> '/', ~0 -> '~'.
    (Twelve lines here rather than the jsonpointer dependency: we need only lookup, and a
    miss must be a quiet 'no number', never an exception per line.)"""
    if pointer == "":
        return ()
    if not pointer.startswith("/"):
        raise ValueError(f"JSON pointer must start with '/': {pointer!r}")
    return tuple(t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/"))


def resolve_pointer(doc: Any, tokens: tuple[str, ...]) -> Any:
    """The value at the pointer, or _MISSING."""
    cur = doc
    for t in tokens:
        if isinstance(cur, dict) and t in cur:
            cur = cur[t]
        elif isinstance(cur, list) and t.isascii() and t.isdigit() and (t == "0" or t[0] != "0"):
            if int(t) >= len(cur):
                return _MISSING
            cur = cur[int(t)]
        else:
            return _MISSING
    return cur


# ------------------------------------------------------------------ the meter


class _Tokens:
    __slots__ = ("cached", "input", "output", "seen")

    def __init__(self) -> None:
        self.input = 0  # every prompt token, cached ones included
        self.output = 0
        self.cached = 0  # prompt tokens served from cache
        self.seen = False

    def add(self, fresh: int, cached: int, written: int, out: int) -> None:
        self.input += fresh + cached + written
        self.cached += cached
        self.output += out
        self.seen = True

    def as_dict(self) -> dict[str, int]:
        return {"input": self.input, "output": self.output, "cached": self.cached}


class CostMeter:
    """Fed one raw stdout line at a time; total() is the run's spend in USD, or None when the
    stream said nothing about money (unmetered, distinct from a metered $0).

    Shapes (RunnerProfile.stream), without a custom spec: "result" `result.total_cost_usd`
    (cumulative, last wins); "agent" `/message/usage/cost/total` summed over `message_end`
    (else over `turn_end`, else from the last `agent_end`); "thread" `turn.completed.usage`
    tokens, which are the thread's running total (last per thread, summed over threads), priced
    by the table; "step" `step_finish` `part.cost` summed, or its tokens priced when it reports
    no cost. Each wins over the next: never added. With a spec, only the spec counts. `source`
    names the CLI whose profile speaks the shape."""

    def __init__(
        self,
        runner: Runner,
        prices: Mapping[str, Any] | None = None,
        runners: tuple[RunnerProfile, ...] = RUNNERS,
    ) -> None:
        self.runner = runner
        self._prices = price_table(prices, runners)
        # the profiles whose own closing events carry a run's tokens (RunnerProfile.run_tokens)
        self._own = [
            (p.name, frozenset(p.token_events), p.is_own, p.run_tokens)
            for p in runners
            if p.is_own and p.run_tokens and p.token_events
        ]
        self._names = {p.stream: p.name for p in runners if p.stream}
        self._cmd_model = command_model(runner.tick)
        self._stream_model: str | None = None
        spec = runner.cost
        self._spec = spec
        self._spec_ptr: tuple[str, ...] = ()
        if spec is not None:
            try:
                self._spec_ptr = parse_pointer(spec.pointer)
            except ValueError:
                self._spec_ptr = ("\x00never",)
            self._types: frozenset[str] = frozenset({spec.type})
        else:
            self._types = _BUILTIN_TYPES.union(*(kinds for _, kinds, _, _ in self._own))
        # Lines opening with one of these are parsed; any other compact '{"type":"…' line is
        # skipped unparsed (the meter must add next to nothing to rendering a long stream).
        # A type a JSON writer may escape leaves every line to the parser.
        self._hits = tuple(_COMPACT + t + '"' for t in sorted(self._types))
        self._plain = all(_PLAIN_TYPE.fullmatch(t) for t in self._types)
        self._spec_sum = 0.0
        self._spec_last: float | None = None
        # per event type a cost is read from ("agent": one sum per type), in the order one
        # wins over the next: its USD (None until it carried a cost) and its tokens
        self._usd: dict[str, float | None] = dict.fromkeys(_SOURCES)
        self._tok = {kind: _Tokens() for kind in _SOURCES}
        # "thread": thread key -> (fresh input, cached input, output), cumulative per thread
        self._thread: str = ""
        self._threads: dict[str, tuple[int, int, int]] = {}
        self._step_priced = False
        # a profile's run: (its name, per model (model, input with cached, cached, output))
        self._run: tuple[str, list[tuple[str, int, int, int]]] | None = None

    # ---------------------------------------------------------- feeding

    def feed(self, line: str) -> None:
        """One raw stdout line. Never raises: garbage and shapes it does not know are skipped."""
        try:
            if self._plain and line.startswith(_COMPACT):
                if not line.startswith(self._hits):
                    return
            elif _OBJECT_START.match(line) is None:
                return
            ev = jsonio.loads(line)
            if isinstance(ev, dict):
                self._event(ev)
        except Exception:
            return

    def _event(self, ev: dict[str, Any]) -> None:
        kind = ev.get("type")
        if self._spec is not None:
            if kind == self._spec.type:
                a = sane_usd(resolve_pointer(ev, self._spec_ptr))
                if a is not None:
                    self._spec_sum += a
                    self._spec_last = a
            return
        if not isinstance(kind, str):
            return
        for name, kinds, is_own, run_tokens in self._own:
            if kind in kinds and is_own(ev):
                self._run = name, run_tokens(ev)  # the whole run's: the last one stands
                return
        if kind == "result":
            self._read_result(ev)
        elif kind in ("message_end", "turn_end"):
            self._add(kind, self._message_cost(_dict(ev.get("message")), self._tok[kind]))
        elif kind == "agent_end":
            self._agent_end(ev)
        elif kind == "thread.started":
            tid = ev.get("thread_id")
            self._thread = tid if isinstance(tid, str) else f"#{len(self._threads)}"
            self._note_model(ev.get("model"))
        elif kind == "turn.completed":
            self._note_model(ev.get("model"))
            usage = ev.get("usage")
            if isinstance(usage, dict):
                got = self._thread_usage(usage)
                if got is not None:
                    self._threads[self._thread] = got
        elif kind == "step_finish":
            self._step(_dict(ev.get("part")))

    def _add(self, kind: str, usd: float | None) -> None:
        if usd is not None:
            self._usd[kind] = (self._usd[kind] or 0.0) + usd

    def _note_model(self, v: Any) -> None:
        if isinstance(v, str) and v.strip():
            self._stream_model = v.strip()

    def _read_result(self, ev: dict[str, Any]) -> None:
        a = sane_usd(ev.get("total_cost_usd"))
        if a is not None:
            self._usd["result"] = a
        usage = ev.get("usage")
        if isinstance(usage, dict):
            tok = _Tokens()  # cumulative for the run: replace, never add
            tok.add(
                _n(usage, "input_tokens"),
                _n(usage, "cache_read_input_tokens"),
                _n(usage, "cache_creation_input_tokens"),
                _n(usage, "output_tokens"),
            )
            self._tok["result"] = tok

    def _message_cost(self, msg: dict[str, Any], tok: _Tokens) -> float | None:
        usage = msg.get("usage")
        if not isinstance(usage, dict):
            return None
        tok.add(
            _n(usage, "input"), _n(usage, "cacheRead"), _n(usage, "cacheWrite"), _n(usage, "output")
        )
        return sane_usd(_dict(usage.get("cost")).get("total"))

    def _agent_end(self, ev: dict[str, Any]) -> None:
        msgs = ev.get("messages")
        if not isinstance(msgs, list):
            return
        total: float | None = None
        tok = _Tokens()
        for m in msgs:
            a = self._message_cost(_dict(m), tok)
            if a is not None:
                total = (total or 0.0) + a
        if total is not None:
            self._usd["agent_end"] = total  # a whole-run summary: the last one stands
            self._tok["agent_end"] = tok

    @staticmethod
    def _thread_usage(usage: dict[str, Any]) -> tuple[int, int, int] | None:
        i, c, o = (
            _count(usage.get("input_tokens")),
            _count(usage.get("cached_input_tokens")),
            _count(usage.get("output_tokens")),
        )
        if i is None and o is None:
            return None
        inp, cached = i or 0, min(c or 0, i or 0)  # cached tokens are part of the input
        return inp - cached, cached, o or 0

    def _step(self, part: dict[str, Any]) -> None:
        tok_d = _dict(part.get("tokens"))
        cache = _dict(tok_d.get("cache"))
        got = [_count(v) for v in (tok_d.get("input"), cache.get("read"), cache.get("write"))]
        out, reason = _count(tok_d.get("output")), _count(tok_d.get("reasoning"))
        has_tokens = any(v is not None for v in (*got, out, reason))
        fresh, read, written = (v or 0 for v in got)
        said = (fresh, read, written, (out or 0) + (reason or 0))
        if has_tokens:
            self._tok["step_finish"].add(*said)
        cost = sane_usd(part.get("cost"))
        if cost is not None and cost > 0:
            self._add("step_finish", cost)
        elif has_tokens:  # the CLI knows no price for this model: use ours
            self._step_priced = True
            row = lookup_price(self._prices, self._price_model())[1]
            self._add("step_finish", price_tokens(row, *said))
        elif cost is not None:
            self._add("step_finish", 0.0)

    def _price_model(self) -> str | None:
        return self._stream_model or self._cmd_model

    @property
    def model(self) -> str | None:
        """The price-table row tokens are priced with (None when nothing was priced)."""
        if self._threads or self._step_priced or (self._run and self._run[1]):
            return lookup_price(self._prices, self._price_model())[0]
        return None

    # ---------------------------------------------------------- reading

    def _priced(self, runs: list[tuple[str | None, int, int, int]]) -> tuple[float, _Tokens]:
        """Runs' (model, fresh input, cached input, output) priced by the table, summed."""
        tok = _Tokens()
        usd = 0.0
        for model, fresh, cached, out in runs:
            tok.add(fresh, cached, 0, out)
            row = lookup_price(self._prices, model or self._price_model())[1]
            usd += price_tokens(row, fresh, cached, 0, out)
        return usd, tok

    def _pick(self) -> tuple[str, float, _Tokens] | None:
        if self._spec is not None:
            if self._spec_last is None:
                return None
            v = self._spec_last if self._spec.mode == "total" else self._spec_sum
            return "spec", v, _Tokens()
        for kind, shape in _SOURCES.items():
            usd = self._usd[kind]
            if usd is not None and shape:
                return self._names.get(shape, shape), usd, self._tok[kind]
        if self._threads:
            usd, tok = self._priced([(None, *t) for t in self._threads.values()])
            return self._names.get("thread", "thread"), usd, tok
        usd = self._usd["step_finish"]
        if usd is not None:
            return self._names.get("step", "step"), usd, self._tok["step_finish"]
        if self._run and self._run[1]:
            usd, tok = self._priced([(m, i - c, c, o) for m, i, c, o in self._run[1]])
            return self._run[0], usd, tok
        return None

    def total(self) -> float | None:
        """USD >= 0 for the run, or None when no metering event was seen."""
        got = self._pick()
        if got is None:
            return None
        v = got[1]
        return v if math.isfinite(v) and v >= 0 else None

    @property
    def source(self) -> str | None:
        """Which CLI's shape the total comes from (its profile's name), spec (None: unmetered)."""
        got = self._pick()
        return got[0] if got is not None else None

    @property
    def tokens(self) -> dict[str, int]:
        """input (cached included) / output / cached tokens of the shape that was metered, or of
        whatever reported tokens when nothing was (e.g. a result without a cost)."""
        got = self._pick()
        if got is not None and got[2].seen:
            return got[2].as_dict()
        for tok in self._tok.values():
            if tok.seen:
                return tok.as_dict()
        return {"input": 0, "output": 0, "cached": 0}
