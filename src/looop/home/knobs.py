"""Every tunable: its env name, config key, default and bounds; env > config > default."""

from __future__ import annotations

from looop.home.errors import bad_config_value

TYPE_CHECKING = False  # not `from typing`: importing typing costs the hot path ~3 ms

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any, Literal, Protocol

    class ConfigLike(Protocol):  # what the knobs read of core/config's Config, which imports us
        raw: dict[str, Any]
        source: str


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
            raise bad_config_value(
                source, self.config_key or self.name, self.expected(), v
            ) from None

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
    key = name if config else None
    return Knob(
        name, env or f"LOOOP_{name.upper()}", key, default, kind, minimum, describe, maximum
    )


# Upper bounds: long enough for any real use, short enough that no sleep, deadline or
# allocation built from them can overflow.
_DAY = 86400
_WEEK = 7 * _DAY
_DECADE = 3660 * _DAY
_COUNT = 1_000_000
_BYTES = 1 << 40
_BOUNDS = (  # a worker's bounds (core/limits, loop/diskcheck); 0 turns one off
    ("pids", 512, _COUNT, "processes a worker may run at once"),
    ("memory", 4 << 30, _BYTES, "memory a worker may use (bytes)"),
    ("disk", 2 << 30, _BYTES, "bytes a worker may keep in its own folders"),
)


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
        _k("worktree_keep_days", 14, config=True, minimum=3, maximum=3660, describe="kept (days)"),
        # below the ephemeral ports (Linux 32768-60999, macOS 49152+): an outgoing connection
        # may take one of those between a lease and the worker's bind
        _k("worker_port_base", 24000, config=True, minimum=1024, maximum=65535, describe="port"),
        _k("worker_ports", 1000, config=True, minimum=1, maximum=64512, describe="ports leased"),
        _k(
            "max_daily_usd",
            10.0,
            "float",
            config=True,
            minimum=None,
            maximum=1e9,
            describe="daily budget, <=0 off",
        ),
        _k(
            "refuse_unmetered",
            False,
            "bool",
            config=True,
            describe="with a daily budget on, refuse starting a worker looop cannot meter",
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
            maximum=64 << 20,
            describe="total prompt cap (bytes): whole goals and readings past it left out, 0 off",
        ),
        _k("noop_ttl", 21600, maximum=_DECADE, describe="re-decide an old noop (s), 0 off"),
        _k("max_decides_per_hour", 120, maximum=_COUNT, describe="hourly decide cap, 0 off"),
        _k(
            "coalesce",
            5,
            config=True,
            maximum=60,
            describe="changes within this many seconds make one decide (s), 0 off",
        ),
        _k("flap_streak", 5, maximum=_COUNT, describe="v1.0's flap switch: 0 turns damping off"),
        _k(
            "flap_window",
            5,
            config=True,
            minimum=2,
            maximum=1000,
            describe="beats of signal history per sensor for flap detection",
        ),
        _k(
            "flap_high",
            30.0,
            "float",
            config=True,
            maximum=100,
            describe="weighted % of changed beats that starts flapping, 0 off",
        ),
        _k(
            "flap_low",
            20.0,
            "float",
            config=True,
            maximum=100,
            describe="weighted % below which a flapping sensor has settled",
        ),
        _k(
            "notify_failure_streak",
            3,
            config=True,
            maximum=_COUNT,
            describe="tell the human after this many failed beats in a row, 0 off",
        ),
        _k(
            "notify_drain_secs",
            10,
            "float",
            maximum=_DAY,
            describe="a one-shot command waits this long at exit for notifications on their way",
        ),
        _k(
            "tells_consumed_keep_secs",
            604800,
            maximum=_DECADE,
            describe="a tell already read is kept this long in tells/consumed/ (s)",
        ),
        _k("max_workers", 8, maximum=10_000, describe="fleet cap, 0 off"),
        _k(
            "worker_stuck_secs",
            900,
            maximum=_DECADE,
            describe="a silent live worker counts as stuck",
        ),
        _k("worker_stall_after", 3, maximum=_COUNT, describe="same failures in a row: stalled"),
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
        # The pulse's own restartPolicy (its session's supervisor): a crash restarts it after
        # a delay doubling from the first to the cap; a heartbeat older than the pulse's own
        # promise plus the watchdog's grace restarts it too (0: no watchdog).
        _k(
            "pulse_restart_secs",
            1,
            "float",
            minimum=0.01,
            maximum=_DAY,
            describe="first delay before a crashed pulse restarts (s), doubling",
        ),
        _k(
            "pulse_restart_max_secs",
            60,
            "float",
            minimum=0.01,
            maximum=_DAY,
            describe="cap of the pulse's restart delay (s)",
        ),
        _k(
            "pulse_watchdog_secs",
            120,
            "float",
            maximum=_DAY,
            describe="restart a pulse this long past its promised heartbeat (s); 0 off",
        ),
        _k(
            "session_host_idle",
            300,
            "float",
            maximum=_DAY,
            describe=(
                "a data dir's preloaded session host lives while one of its sessions does, "
                "then exits after this long unused (s, at most 10); 0: no host"
            ),
        ),
        # A worker's log rotates at this size into at most this many files (a reused id's
        # earlier logs counted), so a chatty worker cannot fill the disk: 16 MiB (the window a
        # dead screenshot replays; a TUI repaints all the time) x 4, at most 64 MiB a session.
        _k(
            "session_log_max_bytes",
            16 << 20,
            minimum=64 << 10,
            maximum=_BYTES,
            describe="a session's output.log rotates at this size (bytes)",
        ),
        _k(
            "session_log_max_files",
            4,
            minimum=2,
            maximum=1000,
            describe="a session's log files kept, rotated and earlier runs' counted",
        ),
        *(_k(f"worker_max_{n}", v, config=True, maximum=m, describe=d) for n, v, m, d in _BOUNDS),
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

    __slots__ = ("given", "values")

    def __init__(self, values: dict[str, Any], given: frozenset[str] = frozenset()) -> None:
        self.values = values
        self.given = given  # the knobs set by the config or the env, not left at their default

    def num(self, name: str) -> int:
        v = self.values[name]
        assert isinstance(v, int)
        return v

    def real(self, name: str) -> float:
        v = self.values[name]
        assert isinstance(v, int | float)
        return float(v)

    def log_cap(self) -> tuple[int, int]:
        """A session's output.log: (rotate at bytes, files kept)."""
        return self.num("session_log_max_bytes"), self.num("session_log_max_files")

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
    "resume_command",
    "interactive",
    "runner",
    "cost",
    "notification",
    "notify_urls",
    "prices",
    "shell_policy",
    "sandbox",
    "web",
    "mcp",
    "land",
    "worktree",
    "v",
)
_RUNNER_KEYS = ("tick", "worker", "interactive", "cost", "sandbox", "resume", "needs_input")


def unknown_key_warnings(cfg: ConfigLike) -> list[str]:
    """One line per key looop does not read, with the nearest known key or the env knob."""
    known = [*_TOP_KEYS, *(k.config_key for k in KNOBS.values() if k.config_key)]
    out: list[str] = []

    def near(key: str, choices: list[str]) -> str:
        # status and ls check every config they read; difflib brings collections and heapq
        import difflib  # lazy: the door to difflib: only a config with an unknown key pays

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


def env_knob(name: str, env: Mapping[str, str]) -> Any:
    """One env-only knob without reading the config (what an event writer needs before any
    config is read): the env value, else the default; a bad value falls back quietly here and
    is warned about by the verb's own resolve_knobs."""
    k = KNOBS[name]
    ev = env.get(k.env)
    if ev is not None and ev.strip() != "":
        try:
            return k.from_env(ev)
        except (ValueError, TypeError):
            pass
    return k.default


def resolve_knobs(
    cfg: ConfigLike, env: Mapping[str, str], warn: Callable[[str], None] | None = None
) -> Knobs:
    """env LOOOP_* > config > default; bad env warns and falls back, bad config raises;
    a config key looop does not read warns (once per key: `warn` dedupes)."""
    if warn:
        for msg in unknown_key_warnings(cfg):
            warn(msg)
    out: dict[str, Any] = {}
    given: set[str] = set()
    for k in KNOBS.values():
        val = k.default
        if k.config_key and k.config_key in cfg.raw:
            val = k.from_config(cfg.raw[k.config_key], cfg.source)
            given.add(k.name)
        ev = env.get(k.env)
        if ev is not None and ev.strip() != "":
            try:
                val = k.from_env(ev)
                given.add(k.name)
            except (ValueError, TypeError):
                if warn:
                    fix = f"using {val!r} — fix or unset {k.env}"
                    warn(f"ignoring {k.env}={ev!r}: expected {k.expected()}; {fix}")
        out[k.name] = val
    return Knobs(out, frozenset(given))
