"""Config: both shapes (named runners, flat), presets, knob precedence env > config > default."""

from __future__ import annotations

import json

from looop.core.errors import LooopError

TYPE_CHECKING = False  # not `from typing`: importing typing costs the hot path ~3 ms

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path
    from re import Pattern
    from typing import Any, Literal

# Runner presets, proven against the real CLIs (tests/realcli). The tick command gets the prompt
# on stdin unless it names {{prompt_file}}. A tick never splices the prompt into its command line
# ("$(cat {{prompt_file}})"): one argv string is capped at 128 KiB and the prompt may be 256 KiB.
PRESETS: dict[str, dict[str, str]] = {
    "claude": {
        "tick": "claude -p --output-format stream-json --verbose "
        "--dangerously-skip-permissions --model sonnet",
        "worker": 'claude --dangerously-skip-permissions --model opus "$(cat {{prompt_file}})"',
    },
    "codex": {
        # `-` reads the prompt from stdin
        "tick": "codex exec --json --skip-git-repo-check "
        "--dangerously-bypass-approvals-and-sandbox -",
        "worker": 'codex --dangerously-bypass-approvals-and-sandbox "$(cat {{prompt_file}})"',
    },
    "opencode": {
        # with no message argument, `opencode run` reads the message from stdin
        "tick": "opencode run --format json",
        "worker": 'opencode --prompt "$(cat {{prompt_file}})"',
    },
    "pi": {
        "tick": "pi -p --mode json -ne --model claude-sonnet-4-5 --thinking low @{{prompt_file}}",
        # the newest opus pi 0.73 knows; an unknown id makes pi exit at once
        "worker": "pi --model claude-opus-4-7 --thinking medium @{{prompt_file}}",
    },
}
DEFAULT_RUNNER = "claude"
PLACEHOLDER = "{{prompt_file}}"


# Plain classes, not dataclasses: `looop status` must start fast (dataclasses imports inspect).


class CostSpec:
    __slots__ = ("mode", "pointer", "type")

    def __init__(self, type: str, pointer: str, mode: Literal["sum", "total"] = "sum") -> None:
        self.type = type
        self.pointer = pointer
        self.mode = mode

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CostSpec) and (self.type, self.pointer, self.mode) == (
            other.type,
            other.pointer,
            other.mode,
        )

    def __repr__(self) -> str:
        return f"CostSpec({self.type!r}, {self.pointer!r}, {self.mode!r})"


class Runner:
    __slots__ = ("cost", "name", "tick", "worker")

    def __init__(
        self, name: str, tick: str | None, worker: str | None, cost: CostSpec | None = None
    ) -> None:
        self.name = name
        self.tick = tick
        self.worker = worker
        self.cost = cost

    def __repr__(self) -> str:
        return f"Runner({self.name!r}, tick={self.tick!r}, worker={self.worker!r})"


SHELL_MODES = ("tripwire", "off")


class ShellPolicy:
    """`shell_policy`: the built-in run_shell tripwire on or off, plus the user's own patterns."""

    __slots__ = ("allow", "deny", "mode")

    def __init__(
        self,
        mode: str = "tripwire",
        deny: tuple[Pattern[str], ...] = (),
        allow: tuple[Pattern[str], ...] = (),
    ) -> None:
        self.mode = mode
        self.deny = deny
        self.allow = allow

    def __repr__(self) -> str:
        pats = [p.pattern for p in self.deny], [p.pattern for p in self.allow]
        return f"ShellPolicy({self.mode!r}, deny={pats[0]!r}, allow={pats[1]!r})"


class Config:
    __slots__ = ("default", "exists", "raw", "runners", "shell_policy", "source")

    def __init__(
        self,
        default: str | None,
        runners: dict[str, Runner],
        raw: dict[str, Any] | None = None,
        source: str = "<default>",
        exists: bool = False,
        shell_policy: ShellPolicy | None = None,
    ) -> None:
        self.default = default
        self.runners = runners
        self.raw: dict[str, Any] = raw if raw is not None else {}
        self.source = source
        self.exists = exists
        self.shell_policy = shell_policy if shell_policy is not None else ShellPolicy()

    def runner(self, name: str | None = None) -> Runner | None:
        key = name if name is not None else self.default
        return self.runners.get(key) if key is not None else None


def default_config_obj() -> dict[str, Any]:
    """What a new data dir is seeded with: every preset, claude active."""
    return {
        "default": DEFAULT_RUNNER,
        "runners": {k: dict(v) for k, v in PRESETS.items()},
    }


def _bad(source: str, key: str, expected: str, got: Any) -> LooopError:
    shown = json.dumps(got, ensure_ascii=False)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return LooopError(f"config {source}: key '{key}' must be {expected} (got {shown})")


def _opt_str(obj: Mapping[str, Any], key: str, source: str, where: str) -> str | None:
    v = obj.get(key)
    if v is None:
        return None
    if not isinstance(v, str):
        raise _bad(source, f"{where}{key}", "a string", v)
    return v if v.strip() else None


def _cost_spec(v: Any, source: str, where: str) -> CostSpec | None:
    if v is None:
        return None
    if not isinstance(v, dict):
        raise _bad(source, where, 'an object {"type","pointer","mode"}', v)
    t, p, m = v.get("type"), v.get("pointer"), v.get("mode", "sum")
    if not isinstance(t, str) or not isinstance(p, str):
        raise _bad(source, where, 'an object with string "type" and "pointer"', v)
    if p and not p.startswith("/"):
        raise _bad(source, f"{where}.pointer", "a JSON pointer starting with '/'", p)
    if m not in ("sum", "total"):
        raise _bad(source, f"{where}.mode", '"sum" or "total"', m)
    return CostSpec(type=t, pointer=p, mode=m)


def parse_config(obj: Any, source: str) -> Config:
    """Validate a parsed config object; a bad value names its key."""
    if not isinstance(obj, dict):
        raise LooopError(f"config {source}: must be a JSON object")
    runners: dict[str, Runner] = {}
    default: str | None
    if "runners" in obj:
        rs = obj["runners"]
        if not isinstance(rs, dict):
            raise _bad(source, "runners", "an object of runner name -> {tick, worker}", rs)
        for name, spec in rs.items():
            if not isinstance(spec, dict):
                raise _bad(source, f"runners.{name}", "an object {tick, worker}", spec)
            where = f"runners.{name}."
            worker = _opt_str(spec, "worker", source, where)
            if worker is None:
                worker = _opt_str(spec, "interactive", source, where)
            runners[name] = Runner(
                name=name,
                tick=_opt_str(spec, "tick", source, where),
                worker=worker,
                cost=_cost_spec(spec.get("cost"), source, f"runners.{name}.cost"),
            )
        d = obj.get("default")
        if d is not None and not isinstance(d, str):
            raise _bad(source, "default", "a runner name", d)
        if d is not None and d not in runners:
            names = ", ".join(sorted(runners)) or "none"
            raise LooopError(
                f"config {source}: key 'default' names runner '{d}', which is not under "
                f"'runners' (have: {names})"
            )
        default = d
    else:
        tick = _opt_str(obj, "tick_command", source, "")
        if tick is None:
            tick = _opt_str(obj, "tick", source, "")
        worker = _opt_str(obj, "worker_command", source, "")
        if worker is None:
            worker = _opt_str(obj, "interactive", source, "")
        name = obj.get("runner", "custom")
        if not isinstance(name, str) or not name:
            raise _bad(source, "runner", "a runner name", name)
        runners[name] = Runner(
            name=name, tick=tick, worker=worker, cost=_cost_spec(obj.get("cost"), source, "cost")
        )
        default = name
    cfg = Config(default=default, runners=runners, raw=obj, source=source, exists=True)
    for knob in KNOBS.values():
        if knob.config_key and knob.config_key in obj:
            knob.from_config(obj[knob.config_key], source)
    _check_extra(obj, source)
    cfg.shell_policy = _shell_policy(obj.get("shell_policy"), source)
    return cfg


def _check_extra(obj: Mapping[str, Any], source: str) -> None:
    n = obj.get("notification")
    if n is not None and not isinstance(n, str):
        raise _bad(source, "notification", "a shell command string", n)
    urls = obj.get("notify_urls")
    if urls is not None and not (isinstance(urls, list) and all(isinstance(u, str) for u in urls)):
        raise _bad(source, "notify_urls", "a list of apprise URL strings", urls)
    prices = obj.get("prices")
    if prices is not None and not isinstance(prices, dict):
        raise _bad(source, "prices", "an object of model -> {input, output} USD per 1M", prices)
    for model, row in (prices or {}).items():
        _check_price_row(row, source, f"prices.{model}")


_SHELL_POLICY_SHAPE = '"tripwire", "off" or an object {"mode", "deny", "allow"}'


def _shell_policy(v: Any, source: str) -> ShellPolicy:
    """`shell_policy`: "tripwire" (default) | "off" | {"mode", "deny": [re], "allow": [re]}."""
    if v is None:
        return ShellPolicy()
    if isinstance(v, str):
        if v not in SHELL_MODES:
            raise _bad(source, "shell_policy", _SHELL_POLICY_SHAPE, v)
        return ShellPolicy(v)
    if not isinstance(v, dict):
        raise _bad(source, "shell_policy", _SHELL_POLICY_SHAPE, v)
    for key in v:
        if key not in ("mode", "deny", "allow"):
            raise _bad(source, f"shell_policy.{key}", 'one of "mode", "deny", "allow"', key)
    mode = v.get("mode", "tripwire")
    if not isinstance(mode, str) or mode not in SHELL_MODES:
        raise _bad(source, "shell_policy.mode", '"tripwire" or "off"', mode)
    return ShellPolicy(
        mode,
        _shell_patterns(v.get("deny"), source, "deny"),
        _shell_patterns(v.get("allow"), source, "allow"),
    )


def _shell_patterns(v: Any, source: str, key: str) -> tuple[Pattern[str], ...]:
    if v is None:
        return ()
    if not isinstance(v, list) or not all(isinstance(p, str) for p in v):
        raise _bad(source, f"shell_policy.{key}", "a list of Python regex strings", v)
    if not v:
        return ()
    import re  # only a config with patterns pays for it

    out = []
    for n, p in enumerate(v):
        try:
            out.append(re.compile(p))
        except re.error as e:
            where = f"shell_policy.{key}[{n}]"
            raise _bad(source, where, f"a valid Python regex ({e})", p) from None
    return tuple(out)


PRICE_FIELDS = ("input", "output", "cached_input", "cache_write")


def _check_price_row(row: Any, source: str, where: str) -> None:
    """One price row: USD per 1M tokens, each field a finite number >= 0 (a typo is an error)."""
    if not isinstance(row, dict):
        raise _bad(source, where, "an object {input, output, cached_input} of USD per 1M", row)
    for key, v in row.items():
        if key not in PRICE_FIELDS:
            raise _bad(source, f"{where}.{key}", "one of " + ", ".join(PRICE_FIELDS), key)
        ok = isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v < float("inf")
        if not ok:
            raise _bad(source, f"{where}.{key}", "a number >= 0 (USD per 1M tokens)", v)


def load_config(path: Path) -> Config:
    """The config file, or the built-in default when it does not exist."""
    from looop.core import jsonsafe, store

    try:
        raw = store.read_regular(path, 16 << 20)
    except FileNotFoundError:
        cfg = parse_config(default_config_obj(), str(path))
        return Config(
            cfg.default,
            cfg.runners,
            cfg.raw,
            str(path),
            exists=False,
            shell_policy=cfg.shell_policy,
        )
    except OSError as e:
        raise LooopError(f"config {path}: cannot read ({e.strerror})") from e
    if len(raw) > 16 << 20:
        raise LooopError(f"config {path}: over 16 MiB; fix or re-run `looop init`")
    try:
        obj = jsonsafe.loads(raw.decode("utf-8"), max_int_digits=30)
    except ValueError as e:
        raise LooopError(f"config {path}: not valid JSON ({e}); fix or re-run `looop init`") from e
    return parse_config(obj, str(path))


# ---------------------------------------------------------------- knobs


class Knob:
    __slots__ = ("config_key", "default", "describe", "env", "kind", "maximum", "minimum", "name")

    def __init__(
        self,
        name: str,
        env: str,
        config_key: str | None,
        default: Any,
        kind: Literal["int", "float", "bool"],
        minimum: float | None = 0,
        describe: str = "",
        maximum: float = 0,
    ) -> None:
        self.name = name
        self.env = env
        self.config_key = config_key
        self.default = default
        self.kind = kind
        self.minimum = minimum
        self.maximum = maximum
        self.describe = describe

    def _coerce(self, v: Any) -> Any:
        if self.kind == "bool":
            if isinstance(v, bool):
                return v
            if isinstance(v, str) and v.strip().lower() in ("1", "true", "yes", "on"):
                return True
            if isinstance(v, str) and v.strip().lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError
        if isinstance(v, bool):
            raise ValueError
        n: int | float
        if self.kind == "int":
            if isinstance(v, str):
                v = v.strip()
                n = int(v)
            elif isinstance(v, int):
                n = v
            elif isinstance(v, float) and v.is_integer():
                n = int(v)
            else:
                raise ValueError
        else:
            n = float(v.strip()) if isinstance(v, str) else float(v)
            if n != n:  # NaN
                raise ValueError
        if self.minimum is not None and n < self.minimum:
            raise ValueError
        if n > self.maximum:  # every number has a bound: 1e12 s would overflow a sleep
            raise ValueError
        return n

    def expected(self) -> str:
        if self.kind == "bool":
            return "true or false"
        what = "an integer" if self.kind == "int" else "a number"
        if self.minimum is not None:
            what += f" from {self.minimum:g} to {self.maximum:g}"
        else:
            what += f" up to {self.maximum:g}"
        return what

    def from_config(self, v: Any, source: str) -> Any:
        try:
            return self._coerce(v)
        except (ValueError, TypeError):
            raise _bad(source, self.config_key or self.name, self.expected(), v) from None

    def from_env(self, v: str) -> Any:
        return self._coerce(v)


def _k(
    name: str,
    default: Any,
    kind: Literal["int", "float", "bool"] = "int",
    *,
    config: bool = False,
    minimum: float | None = 0,
    maximum: float = 0,
    env: str | None = None,
    describe: str = "",
) -> Knob:
    return Knob(
        name,
        env or f"LOOOP_{name.upper()}",
        name if config else None,
        default,
        kind,
        minimum,
        describe,
        maximum,
    )


# Upper bounds: long enough for any real use, short enough that no sleep, deadline or
# allocation built from them can overflow.
_DAY = 86400
_WEEK = 7 * _DAY
_DECADE = 3660 * _DAY
_COUNT = 1_000_000
_BYTES = 1 << 40


KNOBS: dict[str, Knob] = {
    k.name: k
    for k in [
        _k("interval", 60, config=True, minimum=1, maximum=_DAY, describe="idle cadence (s)"),
        _k(
            "busy_interval",
            None,
            config=True,
            minimum=1,
            maximum=_DAY,
            describe="cadence after a move (s)",
        ),
        _k(
            "active_interval",
            None,
            config=True,
            minimum=1,
            maximum=_DAY,
            describe="cadence while a worker lives (s)",
        ),
        _k(
            "max_next_interval",
            300,
            config=True,
            minimum=5,
            maximum=_DAY,
            describe="cap on the AI's nudge (s)",
        ),
        _k("session_ttl", 259200, config=True, maximum=_DECADE, describe="corpse retention (s)"),
        _k(
            "max_daily_usd",
            10.0,
            "float",
            config=True,
            minimum=None,
            maximum=1e9,
            describe="daily budget, <=0 off",
        ),
        _k("sensor_timeout", 60, maximum=_DAY, describe="per-sensor timeout (s), 0 off"),
        _k("sensor_max_bytes", 8192, maximum=64 << 20, describe="snapshot size cap, 0 off"),
        _k("runs_keep", 50, maximum=_COUNT, describe="runs/ kept, 0 keeps all"),
        _k("tick_timeout_secs", 1800, maximum=_WEEK, describe="runner deadline (s)"),
        _k("shell_timeout_secs", 300, maximum=_WEEK, describe="run_shell deadline (s)"),
        _k("backoff_max_secs", 300, minimum=1, maximum=_DAY, describe="failure backoff cap (s)"),
        _k("playbook_keep", 20, maximum=_COUNT, describe="PLAYBOOK versions kept in playbook.d/"),
        _k(
            "prompt_max_bytes",
            262144,
            minimum=4096,
            maximum=64 << 20,
            describe="total prompt cap",
        ),
        _k("noop_ttl", 21600, maximum=_DECADE, describe="re-decide an old noop (s), 0 off"),
        _k("max_decides_per_hour", 120, maximum=_COUNT, describe="hourly decide cap, 0 off"),
        _k("flap_streak", 5, maximum=_COUNT, describe="flapping-sensor streak, 0 off"),
        _k(
            "notify_failure_streak",
            3,
            config=True,
            maximum=_COUNT,
            describe="tell the human after this many failed beats in a row, 0 off",
        ),
        _k("max_workers", 8, maximum=10_000, describe="fleet cap, 0 off"),
        _k(
            "worker_stuck_secs",
            900,
            maximum=_DECADE,
            describe="a silent live worker counts as stuck",
        ),
        _k(
            "verify_timeout_secs",
            60,
            minimum=1,
            maximum=_WEEK,
            describe="one verify command's deadline",
        ),
        _k(
            "verify_beat_budget_secs",
            120,
            minimum=1,
            maximum=_WEEK,
            describe="all verifies in one beat",
        ),
        _k("journal_max_bytes", 5 * 1024 * 1024, maximum=_BYTES, describe="journal rotation size"),
        _k(
            "events_max_bytes",
            5 * 1024 * 1024,
            maximum=_BYTES,
            describe="events.jsonl rotation size",
        ),
        _k(
            "runner_retries",
            0,
            maximum=100,
            describe="extra runner attempts on a matched provider error",
        ),
        _k("runner_retry_sleep", 3, maximum=3600, describe="seconds x attempt between retries"),
        _k("shell_allow_dangerous", False, "bool", describe="disable the shell tripwire"),
        _k("ask_poll_ms", 1000, minimum=10, maximum=60_000, describe="`looop ask` answer poll"),
        _k(
            "ask_timeout_s",
            0,
            "float",
            maximum=_DECADE,
            describe="`looop ask` gives up after (s), 0 waits forever",
        ),
        _k("wait_poll_ms", 1000, minimum=10, maximum=60_000, describe="`looop wait` poll"),
    ]
}


def knob_lines() -> list[str]:
    """The knob table as the manual's ENVIRONMENT section shows it: one line per knob."""

    def num(v: float) -> str:
        return str(int(v)) if float(v).is_integer() else str(v)

    lines = []
    for k in KNOBS.values():
        if k.kind == "bool":
            default, span = ("1" if k.default else "0"), "0|1"
        else:
            default = "=interval" if k.default is None else num(k.default)
            low = "any" if k.minimum is None else num(k.minimum)
            span = f"{low}..{num(k.maximum)}"
        star = "*" if k.config_key else " "
        lines.append(f"  {k.env:<30}{star}{default:>10}  {span:<18} {k.describe}")
    return lines


class Knobs:
    """Resolved knob values (env > config > default), read by name."""

    __slots__ = ("values",)

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def num(self, name: str) -> int:
        v = self.values[name]
        assert isinstance(v, int)
        return v

    def real(self, name: str) -> float:
        v = self.values[name]
        assert isinstance(v, int | float)
        return float(v)

    def interval_for(self, kind: str) -> int:
        """idle/busy/active cadence; busy and active default to idle."""
        idle = self.num("interval")
        if kind == "busy":
            v = self.values.get("busy_interval")
        elif kind == "active":
            v = self.values.get("active_interval")
        else:
            v = None
        return int(v) if v is not None else idle


# Every key a config may hold besides the knobs (both shapes); anything else is a typo or a
# knob that lives only in the environment, and is warned about, never fatal.
_TOP_KEYS = (
    "default",
    "runners",
    "tick_command",
    "tick",
    "worker_command",
    "interactive",
    "runner",
    "cost",
    "notification",
    "notify_urls",
    "prices",
    "shell_policy",
    "v",
)
_RUNNER_KEYS = ("tick", "worker", "interactive", "cost")


def unknown_key_warnings(cfg: Config) -> list[str]:
    """One line per key looop does not read, with the nearest known key or the env knob."""
    import difflib

    known = [*_TOP_KEYS, *(k.config_key for k in KNOBS.values() if k.config_key)]
    out: list[str] = []

    def near(key: str, choices: list[str]) -> str:
        close = difflib.get_close_matches(key, choices, n=1, cutoff=0.6)
        return f" — did you mean '{close[0]}'?" if close else ""

    for key in cfg.raw:
        if key in known or not isinstance(key, str) or key.startswith(("_", "$")):
            continue
        knob = KNOBS.get(key)
        if knob is not None:  # a real knob, only settable in the environment
            out.append(
                f"config {cfg.source}: '{key}' is not read from the config; set {knob.env} "
                "in the environment instead"
            )
        else:
            out.append(f"config {cfg.source}: unknown key '{key}' is ignored{near(key, known)}")
    runners = cfg.raw.get("runners")
    for name, spec in runners.items() if isinstance(runners, dict) else ():
        for key in spec if isinstance(spec, dict) else ():
            if key not in _RUNNER_KEYS and not key.startswith(("_", "$")):
                out.append(
                    f"config {cfg.source}: unknown key 'runners.{name}.{key}' is ignored"
                    f"{near(key, list(_RUNNER_KEYS))}"
                )
    return out


def resolve_knobs(
    cfg: Config, env: Mapping[str, str], warn: Callable[[str], None] | None = None
) -> Knobs:
    """env LOOOP_* > config > default; bad env warns and falls back, bad config raises;
    a config key looop does not read warns (once per key: `warn` dedupes)."""
    if warn:
        for msg in unknown_key_warnings(cfg):
            warn(msg)
    out: dict[str, Any] = {}
    for k in KNOBS.values():
        val = k.default
        if k.config_key and k.config_key in cfg.raw:
            val = k.from_config(cfg.raw[k.config_key], cfg.source)
        ev = env.get(k.env)
        if ev is not None and ev.strip() != "":
            try:
                val = k.from_env(ev)
            except (ValueError, TypeError):
                if warn:
                    warn(f"ignoring {k.env}={ev!r}: expected {k.expected()}; using {val!r}")
        out[k.name] = val
    return Knobs(out)


def substitute_prompt_file(template: str, prompt_path: Path) -> str:
    """Replace {{prompt_file}} with a shell-quoted path, without double-quoting a quoted one."""
    import shlex

    q = shlex.quote(str(prompt_path))
    for quoted in (f'"{PLACEHOLDER}"', f"'{PLACEHOLDER}'"):
        template = template.replace(quoted, q)
    return template.replace(PLACEHOLDER, q)
