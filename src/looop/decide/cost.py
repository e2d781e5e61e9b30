"""Spend control: meter a runner's stream, keep the cost ledger, and the state behind the three
breakers (daily budget, unmetered runs, hourly decide cap)."""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Iterator, Mapping
from datetime import date, datetime, timedelta

from looop.core import store
from looop.core.clock import Clock, parse_utc, utc_stamp
from looop.core.config import PRICE_FIELDS, Knobs, Runner
from looop.core.errors import CorruptState, LooopError
from looop.core.paths import Paths

TYPE_CHECKING = False  # not `from typing`: status imports this module on its fast path

if TYPE_CHECKING:
    from contextlib import AbstractContextManager
    from typing import Any

UNMETERED_LIMIT = 3
DECIDE_WINDOW_S = 3600
# A decide ledger that cannot be read holds the cap closed this long (then it is empty again).
DECIDE_HOLD_S = 3600
# What decides_last_hour reports while held when it is not told the cap: above any sane cap.
DECIDE_HELD_COUNT = 1_000_000
# One event or one ledger row claiming more than this is garbage, not spend.
MAX_USD = 1_000_000.0
_MAX_TOKENS = 10**12
_PEEK = 200  # how far into a line the cheap "type" peek looks

# USD per 1M tokens, used only where a stream reports tokens but no money (codex; opencode when
# its own cost is 0). Editable assumptions, list prices as of late 2025: override or add rows
# with config `prices` = {model: {input, output, cached_input, cache_write}}. "default" prices
# any model not listed (set to gpt-5's rates, the codex family's baseline).
DEFAULT_PRICES: dict[str, dict[str, float]] = {
    "default": {"input": 1.25, "cached_input": 0.125, "output": 10.0},
    "gpt-5": {"input": 1.25, "cached_input": 0.125, "output": 10.0},
    "gpt-5-codex": {"input": 1.25, "cached_input": 0.125, "output": 10.0},
    "gpt-5-mini": {"input": 0.25, "cached_input": 0.025, "output": 2.0},
    "gpt-5-nano": {"input": 0.05, "cached_input": 0.005, "output": 0.4},
    "gpt-5.1": {"input": 1.25, "cached_input": 0.125, "output": 10.0},
    "gpt-5.1-codex": {"input": 1.25, "cached_input": 0.125, "output": 10.0},
    "gpt-5.1-codex-max": {"input": 1.25, "cached_input": 0.125, "output": 10.0},
    "gpt-5.1-codex-mini": {"input": 0.25, "cached_input": 0.025, "output": 2.0},
    "gpt-5.2": {"input": 1.75, "cached_input": 0.175, "output": 14.0},
    "codex-mini-latest": {"input": 1.5, "cached_input": 0.375, "output": 6.0},
    "o3": {"input": 2.0, "cached_input": 0.5, "output": 8.0},
    "o4-mini": {"input": 1.1, "cached_input": 0.275, "output": 4.4},
    "gpt-4.1": {"input": 2.0, "cached_input": 0.5, "output": 8.0},
    "gpt-4.1-mini": {"input": 0.4, "cached_input": 0.1, "output": 1.6},
    "claude-sonnet-4-5": {
        "input": 3.0,
        "cached_input": 0.3,
        "cache_write": 3.75,
        "output": 15.0,
    },
    "claude-opus-4-5": {"input": 5.0, "cached_input": 0.5, "cache_write": 6.25, "output": 25.0},
    "claude-haiku-4-5": {"input": 1.0, "cached_input": 0.1, "cache_write": 1.25, "output": 5.0},
}


# Top-level event types a built-in meter reads; every other line is skipped unparsed.
_BUILTIN_TYPES = frozenset(
    {
        "result",  # claude
        "message_end",  # pi
        "turn_end",  # pi
        "agent_end",  # pi
        "thread.started",  # codex
        "turn.completed",  # codex
        "step_finish",  # opencode
    }
)
_OBJECT_START = re.compile(r"\s*\{")
_SPACED_COLON = re.compile(r'\s*:\s*"')
_COMPACT = '{"type":"'
_HEAD_LEN = len(_COMPACT) + 4  # the prefix plus the type's first 4 characters
_SKIP, _CHECK, _SLOW = "skip", "check", "slow"
_PLAIN_TYPE = re.compile(r"[A-Za-z0-9_.:-]+")  # a type no JSON writer escapes
_MISSING = object()


# ------------------------------------------------------------------ small readers


def _amount(v: Any) -> float | None:
    """A money amount worth believing: a finite JSON number in [0, MAX_USD]."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    if isinstance(v, int) and not 0 <= v <= MAX_USD:
        return None
    f = float(v)
    if not (math.isfinite(f) and 0.0 <= f <= MAX_USD):
        return None
    return f


def _count(v: Any) -> int | None:
    """A token count: a whole, non-negative, plausible JSON number."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v if 0 <= v <= _MAX_TOKENS else None
    if isinstance(v, float) and math.isfinite(v) and v.is_integer() and 0 <= v <= _MAX_TOKENS:
        return int(v)
    return None


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
        if isinstance(cur, dict):
            if t not in cur:
                return _MISSING
            cur = cur[t]
        elif isinstance(cur, list):
            if not (t.isascii() and t.isdigit()) or (len(t) > 1 and t[0] == "0"):
                return _MISSING
            i = int(t)
            if i >= len(cur):
                return _MISSING
            cur = cur[i]
        else:
            return _MISSING
    return cur


def _type_peek(line: str) -> str | None:
    """The top-level "type" value when it can be read without parsing (it comes first in every
    known runner's events); None when unsure, so the caller parses the line."""
    i = line.find('"type"', 0, _PEEK)
    if i < 0:
        return None
    o = line.find("{", 0, i)
    if o < 0 or line.find("{", o + 1, i) >= 0:
        return None  # not an object, or the key sits in a nested object
    if line.startswith(':"', i + 6):
        j = i + 8
    else:  # spaced JSON, e.g. Python's json.dumps
        m = _SPACED_COLON.match(line, i + 6)
        if m is None:
            return None
        j = m.end()
    k = line.find('"', j)
    if k < 0:
        return None
    value = line[j:k]
    return None if "\\" in value else value


# ------------------------------------------------------------------ prices


def price_table(overrides: Mapping[str, Any] | None = None) -> dict[str, dict[str, float]]:
    """Built-in prices with config `prices` merged over them, field by field. A new model's row
    starts from "default", so a partial row never leaves a price undefined. Bad values are
    skipped here (config loading reports them)."""
    table = {k: dict(v) for k, v in DEFAULT_PRICES.items()}
    if not isinstance(overrides, Mapping):
        return table
    # "default" first: new models start from it, overridden or not
    for model in sorted(overrides, key=lambda k: k != "default"):
        row = overrides[model]
        if not isinstance(model, str) or not isinstance(row, Mapping):
            continue
        merged = dict(table.get(model) or table["default"])
        for key in PRICE_FIELDS:
            v = _amount(row.get(key))
            if v is not None:
                merged[key] = v
        table[model] = merged
    return table


def lookup_price(
    table: Mapping[str, Mapping[str, float]], model: str | None
) -> tuple[str, Mapping[str, float]]:
    """The row pricing `model`: exact name, lowercase, without a provider/ prefix, the longest
    listed name the model extends with '-' (dated snapshots such as gpt-5-2025-08-07), else
    "default"."""
    if model:
        base = model.rsplit("/", 1)[-1]
        for cand in (model, model.lower(), base, base.lower()):
            row = table.get(cand)
            if row is not None:
                return cand, row
        low = base.lower()
        best = max((k for k in table if low.startswith(k.lower() + "-")), key=len, default=None)
        if best is not None:
            return best, table[best]
    return "default", table.get("default") or DEFAULT_PRICES["default"]


def price_tokens(
    row: Mapping[str, float], fresh_in: int, cached: int, written: int, out: int
) -> float:
    """USD for token counts; cached reads and cache writes fall back to the input price."""
    p_in = row.get("input", 0.0)
    total = (
        fresh_in * p_in
        + cached * row.get("cached_input", p_in)
        + written * row.get("cache_write", p_in)
        + out * row.get("output", 0.0)
    )
    return total / 1_000_000


def _words(command: str) -> list[str]:
    try:
        import shlex

        return shlex.split(command)
    except ValueError:
        return command.split()


def command_model(command: str | None) -> str | None:
    """The model a tick command names: --model X, --model=X, -m X, or codex's -c model=X."""
    if not command:
        return None
    words = _words(command)
    model: str | None = None
    for i, w in enumerate(words):
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if w in ("--model", "-m") and nxt:
            model = nxt
        elif w.startswith("--model="):
            model = w[len("--model=") :]
        elif w in ("-c", "--config") and nxt.startswith("model="):
            model = nxt[len("model=") :].strip("\"'")
        elif w.startswith(("-cmodel=", "--config=model=")):
            model = w.split("model=", 1)[1].strip("\"'")
    return model or None


def command_word(command: str | None) -> str:
    """The program a tick command runs (basename, past VAR=value and `env`)."""
    if not command:
        return ""
    for w in _words(command):
        if "=" in w and not w.startswith(("-", "/", ".")):
            continue  # VAR=value
        if w == "env" or w.startswith("-"):
            continue
        return w.rsplit("/", 1)[-1]
    return ""


def runner_signature(runner: Runner) -> str:
    """What the unmetered breaker is keyed on: anything that changes what the meter can read.
    Changing the runner, its program, or its cost spec heals an open breaker."""
    spec = runner.cost
    parts = [runner.name, "true" if spec else "false", command_word(runner.tick)]
    if spec is not None:
        parts.append(f"{spec.type} {spec.pointer} {spec.mode}")
    return "|".join(parts)


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

    Shapes, without a custom spec: claude `result.total_cost_usd` (cumulative, last wins);
    pi `/message/usage/cost/total` summed over `message_end` (else over `turn_end`, else from
    the last `agent_end`); codex `turn.completed.usage` tokens, which are the thread's running
    total (last per thread, summed over threads), priced by the table; opencode `step_finish`
    `part.cost` summed, or its tokens priced when it reports no cost. claude wins over pi, pi
    over codex, codex over opencode: never added. With a spec, only the spec counts."""

    def __init__(self, runner: Runner, prices: Mapping[str, Any] | None = None) -> None:
        self.runner = runner
        self._prices = price_table(prices)
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
            self._types = _BUILTIN_TYPES
        # Lines opening with one of these are parsed; any other compact '{"type":"…' line is
        # skipped unparsed (the meter must add next to nothing to rendering a long stream).
        self._hits = tuple(_COMPACT + t + '"' for t in sorted(self._types))
        self._plain = all(_PLAIN_TYPE.fullmatch(t) for t in self._types)
        self._heads: dict[str, str] = {}
        self._spec_sum = 0.0
        self._spec_last: float | None = None
        self._claude: float | None = None
        self._claude_tok = _Tokens()
        # pi: one sum per shape; None until that shape carried a cost
        self._pi_msg: float | None = None
        self._pi_turn: float | None = None
        self._pi_agent: float | None = None
        self._pi_msg_tok = _Tokens()
        self._pi_turn_tok = _Tokens()
        self._pi_agent_tok = _Tokens()
        # codex: thread key -> (fresh input, cached input, output), cumulative per thread
        self._thread: str = ""
        self._codex: dict[str, tuple[int, int, int]] = {}
        self._codex_flat: list[tuple[int, int, int]] = []
        self._oc: float | None = None
        self._oc_tok = _Tokens()
        self._oc_priced = False

    # ---------------------------------------------------------- feeding

    def feed(self, line: str) -> None:
        """One raw stdout line. Never raises: garbage and shapes it does not know are skipped."""
        try:
            how = self._heads.get(line[:_HEAD_LEN])
            if how is None:
                how = self._classify(line[:_HEAD_LEN])
            if how is _SKIP:
                return
            if how is _CHECK:
                if not line.startswith(self._hits):
                    return
            else:  # not compact '{"type":"…' first: find the type the slow way
                kind = _type_peek(line)
                if kind is not None:
                    if kind not in self._types:
                        return
                elif _OBJECT_START.match(line) is None:
                    return
            ev = json.loads(line)
            if isinstance(ev, dict):
                self._event(ev)
        except Exception:
            return

    def _classify(self, head: str) -> str:
        """What a line's first bytes decide: skip it, parse it if it opens with a metered type,
        or look closer. Only compact '{"type":"' heads are remembered (a handful per stream)."""
        if not head.startswith(_COMPACT) or not self._plain:
            return _SLOW
        if any(h.startswith(head) or head.startswith(h) for h in self._hits):
            how = _CHECK
        else:
            how = _SKIP
        if len(self._heads) < 256:
            self._heads[head] = how
        return how

    def _event(self, ev: dict[str, Any]) -> None:
        kind = ev.get("type")
        if self._spec is not None:
            if kind == self._spec.type:
                a = _amount(resolve_pointer(ev, self._spec_ptr))
                if a is not None:
                    self._spec_sum += a
                    self._spec_last = a
            return
        if not isinstance(kind, str):
            msg = ev.get("msg")  # codex before `exec --json` grew typed events
            if isinstance(msg, dict):
                self._codex_legacy(ev, msg)
            return
        if kind == "result":
            self._claude_result(ev)
        elif kind == "message_end":
            a = self._pi_message(_dict(ev.get("message")), self._pi_msg_tok)
            if a is not None:
                self._pi_msg = (self._pi_msg or 0.0) + a
        elif kind == "turn_end":
            a = self._pi_message(_dict(ev.get("message")), self._pi_turn_tok)
            if a is not None:
                self._pi_turn = (self._pi_turn or 0.0) + a
        elif kind == "agent_end":
            self._pi_agent_end(ev)
        elif kind == "thread.started":
            tid = ev.get("thread_id")
            self._thread = tid if isinstance(tid, str) else f"#{len(self._codex)}"
            self._note_model(ev.get("model"))
        elif kind == "turn.completed":
            self._note_model(ev.get("model"))
            usage = ev.get("usage")
            if isinstance(usage, dict):
                got = self._codex_usage(usage)
                if got is not None:
                    self._codex[self._thread] = got
        elif kind == "step_finish":
            self._oc_step(_dict(ev.get("part")))

    def _note_model(self, v: Any) -> None:
        if isinstance(v, str) and v.strip():
            self._stream_model = v.strip()

    def _claude_result(self, ev: dict[str, Any]) -> None:
        a = _amount(ev.get("total_cost_usd"))
        if a is not None:
            self._claude = a
        usage = ev.get("usage")
        if isinstance(usage, dict):
            tok = _Tokens()  # cumulative for the run: replace, never add
            tok.add(
                _n(usage, "input_tokens"),
                _n(usage, "cache_read_input_tokens"),
                _n(usage, "cache_creation_input_tokens"),
                _n(usage, "output_tokens"),
            )
            self._claude_tok = tok

    def _pi_message(self, msg: dict[str, Any], tok: _Tokens) -> float | None:
        usage = msg.get("usage")
        if not isinstance(usage, dict):
            return None
        tok.add(
            _n(usage, "input"), _n(usage, "cacheRead"), _n(usage, "cacheWrite"), _n(usage, "output")
        )
        return _amount(_dict(usage.get("cost")).get("total"))

    def _pi_agent_end(self, ev: dict[str, Any]) -> None:
        msgs = ev.get("messages")
        if not isinstance(msgs, list):
            return
        total: float | None = None
        tok = _Tokens()
        for m in msgs:
            a = self._pi_message(_dict(m), tok)
            if a is not None:
                total = (total or 0.0) + a
        if total is not None:
            self._pi_agent = total  # a whole-run summary: the last one stands
            self._pi_agent_tok = tok

    @staticmethod
    def _codex_usage(usage: dict[str, Any]) -> tuple[int, int, int] | None:
        i, c, o = (
            _count(usage.get("input_tokens")),
            _count(usage.get("cached_input_tokens")),
            _count(usage.get("output_tokens")),
        )
        if i is None and o is None:
            return None
        inp, cached = i or 0, min(c or 0, i or 0)  # cached tokens are part of the input
        return inp - cached, cached, o or 0

    def _codex_legacy(self, ev: dict[str, Any], msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "session_configured":
            self._note_model(msg.get("model"))
            sid = msg.get("session_id")
            if isinstance(sid, str):
                self._thread = sid
        elif kind == "token_count":
            info = msg.get("info")
            if isinstance(info, dict):  # running totals for the session
                got = self._codex_usage(_dict(info.get("total_token_usage")))
                if got is not None:
                    self._codex["legacy:" + self._thread] = got
            else:  # oldest form: one request's usage, flat
                got = self._codex_usage(msg)
                if got is not None:
                    self._codex_flat.append(got)

    def _oc_step(self, part: dict[str, Any]) -> None:
        tokens = part.get("tokens")
        tok_d = _dict(tokens)
        cache = _dict(tok_d.get("cache"))
        fresh, out, reason = (_count(tok_d.get(k)) for k in ("input", "output", "reasoning"))
        read, written = _count(cache.get("read")), _count(cache.get("write"))
        has_tokens = any(v is not None for v in (fresh, out, reason, read, written))
        if has_tokens:
            self._oc_tok.add(fresh or 0, read or 0, written or 0, (out or 0) + (reason or 0))
        cost = _amount(part.get("cost"))
        if cost is not None and cost > 0:
            self._oc = (self._oc or 0.0) + cost
        elif has_tokens:  # opencode knows no price for this model: use ours
            row = lookup_price(self._prices, self._price_model())[1]
            self._oc_priced = True
            priced = price_tokens(
                row, fresh or 0, read or 0, written or 0, (out or 0) + (reason or 0)
            )
            self._oc = (self._oc or 0.0) + priced
        elif cost is not None:
            self._oc = self._oc or 0.0

    def _price_model(self) -> str | None:
        return self._stream_model or self._cmd_model

    @property
    def model(self) -> str | None:
        """The price-table row tokens are priced with (None when nothing was priced)."""
        if self._codex or self._codex_flat or self._oc_priced:
            return lookup_price(self._prices, self._price_model())[0]
        return None

    # ---------------------------------------------------------- reading

    def _codex_total(self) -> tuple[float, _Tokens] | None:
        runs = [*self._codex.values(), *self._codex_flat]
        if not runs:
            return None
        row = lookup_price(self._prices, self._price_model())[1]
        tok = _Tokens()
        usd = 0.0
        for fresh, cached, out in runs:
            tok.add(fresh, cached, 0, out)
            usd += price_tokens(row, fresh, cached, 0, out)
        return usd, tok

    def _pick(self) -> tuple[str, float, _Tokens] | None:
        if self._spec is not None:
            if self._spec_last is None:
                return None
            v = self._spec_last if self._spec.mode == "total" else self._spec_sum
            return "spec", v, _Tokens()
        if self._claude is not None:
            return "claude", self._claude, self._claude_tok
        for pi_usd, tok in (
            (self._pi_msg, self._pi_msg_tok),
            (self._pi_turn, self._pi_turn_tok),
            (self._pi_agent, self._pi_agent_tok),
        ):
            if pi_usd is not None:
                return "pi", pi_usd, tok
        codex = self._codex_total()
        if codex is not None:
            return "codex", codex[0], codex[1]
        if self._oc is not None:
            return "opencode", self._oc, self._oc_tok
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
        """Which shape the total comes from: claude, pi, codex, opencode, spec (None: unmetered)."""
        got = self._pick()
        return got[0] if got is not None else None

    @property
    def tokens(self) -> dict[str, int]:
        """input (cached included) / output / cached tokens of the shape that was metered, or of
        whatever reported tokens when nothing was (e.g. claude without a cost)."""
        got = self._pick()
        if got is not None and got[2].seen:
            return got[2].as_dict()
        for tok in (
            self._claude_tok,
            self._pi_msg_tok,
            self._pi_turn_tok,
            self._pi_agent_tok,
            self._oc_tok,
        ):
            if tok.seen:
                return tok.as_dict()
        return {"input": 0, "output": 0, "cached": 0}


# ------------------------------------------------------------------ the ledger


def record_cost(paths: Paths, now: float, kind: str, id: str, runner: str, usd: float) -> bool:
    """Append one ledger row; only finite amounts > 0 (after rounding to 6 places) count."""
    amount = _amount(usd)
    if amount is None:
        return False
    amount = round(amount, 6)
    if amount <= 0:
        return False
    row = {"cost_usd": amount, "id": id, "kind": kind, "runner": runner, "ts": utc_stamp(now)}
    store.append_line(paths.cost_ledger, store.dumps_state(row))
    return True


def _ledger_text(paths: Paths) -> str | None:
    """The ledger, lossily decoded; None when missing. Unreadable (not corrupt) -> CorruptState."""
    try:
        return store.read_text(paths.cost_ledger)
    except OSError as e:
        raise CorruptState(
            f"cannot read {paths.cost_ledger}: {e.strerror}; fix its permissions"
        ) from e


def _row(line: str) -> dict[str, Any] | None:
    """A ledger row, or None when the line is corrupt."""
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(obj, dict):
        return None
    amount = _amount(obj.get("cost_usd"))
    ts = obj.get("ts")
    when = parse_utc(ts) if isinstance(ts, str) else None
    if amount is None or when is None:
        return None
    obj["cost_usd"] = amount
    obj["_t"] = when
    return obj


def read_ledger(paths: Paths) -> tuple[list[dict[str, Any]], int]:
    """Every readable row (in file order) and how many corrupt lines were skipped. A row is
    corrupt unless it is an object with a sane `cost_usd` and an RFC 3339 `ts`."""
    text = _ledger_text(paths)
    if text is None:
        return [], 0
    rows: list[dict[str, Any]] = []
    bad = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        row = _row(line)
        if row is None:
            bad += 1
            continue
        row.pop("_t")
        rows.append(row)
    return rows, bad


def _local_day(clock: Clock, ts: float) -> date:
    return clock.local(ts).date()


def _day_bounds(clock: Clock, day: date) -> tuple[float, float]:
    """Unix seconds of the local day's first instant and of the next day's (DST-aware)."""
    tz = clock.local().tzinfo
    start = datetime(day.year, day.month, day.day, tzinfo=tz)
    nxt = day + timedelta(days=1)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz)
    return start.timestamp(), end.timestamp()


def spent_on_day(paths: Paths, clock: Clock, day: date | None = None) -> float:
    """USD of every ledger row (ticks and worker reports) whose UTC ts falls on the LOCAL
    calendar day (today by default): the budget resets at local midnight and survives restarts."""
    target = day if day is not None else clock.local().date()
    text = _ledger_text(paths)
    if not text:
        return 0.0
    # Only lines stamped on a UTC date the local day touches can count: skip the rest unparsed.
    lo, hi = _day_bounds(clock, target)
    marks = {utc_stamp(t)[:11] for t in (lo - 86400, lo, (lo + hi) / 2, hi - 1, hi + 86400)}
    amounts: list[float] = []
    for line in text.splitlines():
        if not any(m in line for m in marks):
            continue
        row = _row(line)
        if row is not None and _local_day(clock, row["_t"]) == target:
            amounts.append(row["cost_usd"])
    return math.fsum(amounts)


def run_cost(paths: Paths, run_id: str) -> float | None:
    """The USD the ledger holds for one run id (all its rows, e.g. retried attempts); None when
    it holds none."""
    text = _ledger_text(paths)
    if not text or not run_id:
        return None
    amounts: list[float] = []
    for line in text.splitlines():
        if run_id not in line:
            continue
        row = _row(line)
        if row is not None and row.get("id") == run_id:
            amounts.append(row["cost_usd"])
    return math.fsum(amounts) if amounts else None


def daily_budget(knobs: Knobs) -> float | None:
    """The daily cap in USD, or None when off (<= 0, or not finite)."""
    v = knobs.real("max_daily_usd")
    return v if math.isfinite(v) and v > 0 else None


# ------------------------------------------------------------------ unmetered breaker


def _spend_lock(paths: Paths) -> AbstractContextManager[None]:
    # Our own lock file, not paths.state_lock: a caller holding that one must not deadlock here.
    return store.dir_lock(paths.lock_dir / "spend")


def _read_unmetered(paths: Paths) -> tuple[int, str] | None:
    """(count, sig) or None when absent; CorruptState when unreadable or the wrong shape."""
    obj = store.read_json_object(paths.cost_unmetered)
    if obj is None:
        return None
    n, sig = obj.get("count"), obj.get("sig")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0 or not isinstance(sig, str):
        raise CorruptState(f"{paths.cost_unmetered} has the wrong shape")
    return n, sig


def record_unmetered(paths: Paths, sig: str) -> int:
    """One more consecutive unmetered run at `sig`; another signature restarts at 1."""
    with _spend_lock(paths):
        try:
            prev = _read_unmetered(paths)
        except CorruptState:
            prev = (UNMETERED_LIMIT - 1, sig)  # fail closed: this run opens the breaker
        n = prev[0] + 1 if prev is not None and prev[1] == sig else 1
        store.write_json(paths.cost_unmetered, {"count": n, "sig": sig})
    return n


def clear_unmetered(paths: Paths) -> None:
    store.remove(paths.cost_unmetered)


def unmetered_count(paths: Paths, sig: str) -> int:
    """Consecutive unmetered runs at `sig` (0 when another signature holds the counter)."""
    try:
        got = _read_unmetered(paths)
    except CorruptState:
        return UNMETERED_LIMIT
    return got[0] if got is not None and got[1] == sig else 0


def unmetered_blocked(paths: Paths, sig: str) -> bool:
    """The breaker is open at `sig`. A corrupt counter fails closed: it is repaired as at the
    limit for this signature, so changing the runner (or a metered run) still heals it."""
    try:
        got = _read_unmetered(paths)
    except CorruptState:
        with _spend_lock(paths):
            store.write_json(paths.cost_unmetered, {"count": UNMETERED_LIMIT, "sig": sig})
        return True
    return got is not None and got[1] == sig and got[0] >= UNMETERED_LIMIT


# ------------------------------------------------------------------ hourly decide cap


def _read_decides(paths: Paths, now: float, repair: bool = True) -> tuple[list[float], float]:
    """(attempt stamps in the rolling hour, held_until). A corrupt ledger is repaired as held
    closed for an hour: fail closed, then heal on its own (a pure reader only reports it)."""
    try:
        obj = store.read_json_object(paths.decide_ledger)
        if obj is None:
            return [], 0.0
        raw, held = obj.get("attempts", []), obj.get("held_until", 0)
        if not isinstance(raw, list) or _amount_ts(held) is None:
            raise CorruptState("shape")
        stamps = [_amount_ts(t) for t in raw]
        if any(t is None for t in stamps):
            raise CorruptState("shape")
    except CorruptState:
        held_until = now + DECIDE_HOLD_S
        if repair:
            store.write_json(paths.decide_ledger, {"attempts": [], "held_until": held_until})
        return [], held_until
    lo, hi = now - DECIDE_WINDOW_S, now + DECIDE_WINDOW_S  # far-future stamps: a clock jump
    return [t for t in stamps if t is not None and lo < t <= hi], float(held)


def _amount_ts(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def note_decide(paths: Paths, now: float) -> None:
    """Record one decide attempt (successful or not) in the rolling hour."""
    with _spend_lock(paths):
        stamps, held = _read_decides(paths, now)
        stamps.append(round(now, 3))
        obj: dict[str, Any] = {"attempts": stamps[-100_000:]}
        if held > now:
            obj["held_until"] = held
        store.write_json(paths.decide_ledger, obj)


@contextlib.contextmanager
def _read_lock(paths: Paths) -> Iterator[bool]:
    """The spend lock for a reader, if it can be had: a data dir that is new (nothing to read)
    or read-only (no writer to race) is read without it, and without creating anything."""
    if not paths.decide_ledger.exists():
        yield False
        return
    try:
        lock = _spend_lock(paths)
        lock.__enter__()
    except OSError:
        yield False
        return
    try:
        yield True
    finally:
        lock.__exit__(None, None, None)


def decides_last_hour(paths: Paths, now: float, cap: int | None = None) -> int:
    """Decide attempts in the last 3600 s. While a corrupt ledger holds the cap closed this is
    `cap` when given (else DECIDE_HELD_COUNT), so `count >= cap` idles the beat."""
    with _read_lock(paths) as locked:
        stamps, held = _read_decides(paths, now, repair=locked)
    if held > now:
        return max(len(stamps), cap if cap is not None and cap > 0 else DECIDE_HELD_COUNT)
    return len(stamps)


def decide_retry_in(paths: Paths, now: float, cap: int) -> int:
    """Whole seconds until one more decide fits under `cap` (0 when it fits now)."""
    with _read_lock(paths) as locked:
        stamps, held = _read_decides(paths, now, repair=locked)
    if held > now:
        return max(1, math.ceil(held - now))
    if cap <= 0 or len(stamps) < cap:
        return 0
    stamps.sort()
    oldest_to_drop = stamps[len(stamps) - cap]
    return max(1, math.ceil(oldest_to_drop + DECIDE_WINDOW_S - now))


# ------------------------------------------------------------------ report


def usd(x: float) -> str:
    """$ with at most 4 decimals, trailing zeros trimmed: 0 -> $0, 1.5 -> $1.5, 0.12345 ->
    $0.1235."""
    if not math.isfinite(x):
        return "$?"
    s = f"{round(x, 4):.4f}".rstrip("0").rstrip(".")
    return "$0" if s in ("-0", "") else "$" + s


def parse_usd(text: str) -> float | None:
    """A self-reported amount ("0.42", "$0.42"): finite, >= 0 and sane, else None."""
    t = text.strip().removeprefix("$").strip()
    try:
        v = float(t)
    except ValueError:
        return None
    return _amount(v)


def spend_status(paths: Paths, clock: Clock, knobs: Knobs, runner: Runner | None) -> dict[str, Any]:
    """Today's spend against the budget and the state of each breaker, each open one with one
    line saying how to lift it (for `looop status` and the breaker events)."""
    now = clock.now()
    cap = daily_budget(knobs)
    spent = spent_on_day(paths, clock)
    budget_open = cap is not None and spent >= cap
    sig = runner_signature(runner) if runner is not None else ""
    name = runner.name if runner is not None else "?"
    unmet = unmetered_count(paths, sig) if sig else 0
    unmet_open = cap is not None and bool(sig) and unmetered_blocked(paths, sig)
    per_hour = knobs.num("max_decides_per_hour")
    recent = decides_last_hour(paths, now, per_hour) if per_hour > 0 else 0
    capped = per_hour > 0 and recent >= per_hour
    retry = decide_retry_in(paths, now, per_hour) if capped else 0
    return {
        "spent_today_usd": round(spent, 6),
        "max_daily_usd": cap,
        "budget": {
            "open": budget_open,
            "lift": (
                f"daily budget reached ({usd(spent)} of {usd(cap or 0)}): it resets at local "
                "midnight; raise max_daily_usd in config or LOOOP_MAX_DAILY_USD (0 turns it off)"
            )
            if budget_open
            else None,
        },
        "unmetered": {
            "count": unmet,
            "limit": UNMETERED_LIMIT,
            "open": unmet_open,
            "lift": (
                f"runner '{name}' reported no cost {unmet} runs in a row: add a cost spec under "
                f"runners.{name}.cost, use a runner whose stream carries cost (claude, pi, codex, "
                "opencode), or set max_daily_usd to 0"
            )
            if unmet_open
            else None,
        },
        "decides": {
            "last_hour": recent,
            "cap": per_hour if per_hour > 0 else None,
            "open": capped,
            "retry_in_s": retry,
            "lift": (
                f"{per_hour} decides in the last hour: the next one can run in ~{retry}s; raise "
                "LOOOP_MAX_DECIDES_PER_HOUR (0 turns the cap off)"
            )
            if capped
            else None,
        },
    }


SPANS = ("today", "week", "all")
GROUPINGS = ("kind", "runner", "worker", "day")


def _key(row: dict[str, Any], by: str, day: date) -> str:
    if by == "day":
        return day.isoformat()
    if by == "worker":
        if row.get("kind") == "tick":
            return "(ticks)"
        v = row.get("id")
    else:
        v = row.get(by)
    return v if isinstance(v, str) and v else "?"


def cost_report(
    paths: Paths, clock: Clock, span: str = "today", by: str = "kind"
) -> dict[str, Any]:
    """Spend over a span (today | week = the last 7 local days | all), grouped by kind, runner,
    worker (session id; ticks as one group) or local day."""
    if span not in SPANS:
        raise LooopError(f"unknown span {span!r}: use one of {', '.join(SPANS)}")
    if by not in GROUPINGS:
        raise LooopError(f"unknown grouping --by {by!r}: use one of {', '.join(GROUPINGS)}")
    today = clock.local().date()
    start: date | None = {"today": today, "week": today - timedelta(days=6), "all": None}[span]
    text = _ledger_text(paths)
    groups: dict[str, list[float]] = {}
    amounts: list[float] = []
    bad = 0
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        row = _row(line)
        if row is None:
            bad += 1
            continue
        day = _local_day(clock, row["_t"])
        if start is not None and not start <= day <= today:
            continue
        amounts.append(row["cost_usd"])
        groups.setdefault(_key(row, by, day), []).append(row["cost_usd"])
    return {
        "span": span,
        "by": by,
        "from": start.isoformat() if start is not None else None,
        "to": today.isoformat(),
        "total": round(math.fsum(amounts), 6),
        "calls": len(amounts),
        "groups": [
            {"key": k, "usd": round(math.fsum(v), 6), "calls": len(v)}
            for k, v in sorted(groups.items())
        ],
        "corrupt_lines": bad,
        "ledger": str(paths.cost_ledger),
        "exists": text is not None,
    }


def render_report(rep: dict[str, Any]) -> str:
    """The human text of `looop cost`."""
    if not rep.get("exists", True):
        return f"looop cost — no cost recorded yet\n  ledger: {rep.get('ledger', 'cost.jsonl')}"
    span = rep.get("span")
    if span == "today":
        head = f"looop cost — today ({rep.get('to')} local)"
    elif span == "week":
        head = f"looop cost — last 7 days ({rep.get('from')} to {rep.get('to')} local)"
    else:
        head = "looop cost — all time"
    calls = rep.get("calls", 0)
    lines = [
        head,
        f"  total: {usd(rep.get('total', 0.0))}  ({calls} call{'' if calls == 1 else 's'})",
    ]
    groups = rep.get("groups") or []
    if groups:
        lines.append(f"  by {rep.get('by', 'kind')}:")
        width = max(len(str(g["key"])) for g in groups)
        for g in groups:
            lines.append(f"    {g['key']!s:<{width}}  {usd(g['usd']):>10}  ({g['calls']})")
    bad = rep.get("corrupt_lines", 0)
    if bad:
        lines.append(
            f"  ! {bad} corrupt ledger line{'' if bad == 1 else 's'} skipped in {rep.get('ledger')}"
        )
    return "\n".join(lines)
