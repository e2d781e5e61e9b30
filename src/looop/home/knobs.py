"""Every tunable: its env name, config key, default and bounds; env > config > default."""

from __future__ import annotations

from typing import TYPE_CHECKING

from looop.home.errors import bad_config_value, nearest

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any, Protocol

    class ConfigLike(Protocol):  # what the knobs read of core/config's Config, which imports us
        @property
        def raw(self) -> dict[str, Any]: ...
        @property
        def source(self) -> str: ...


class Knob:
    __slots__ = ("config_key", "default", "describe", "env", "kind", "maximum", "minimum", "name")

    def __init__(self, row: str) -> None:
        """One row of _TABLE."""
        name, default, kind, low, high, describe = row.split(None, 5)
        self.describe = " ".join(describe.split())
        self.name, self.env, self.default = name, f"LOOOP_{name.upper()}", _num(default)
        self.config_key = name if kind.endswith("+c") else None
        self.kind = kind.removesuffix("+c")
        self.minimum, self.maximum = _num(low), _num(high)

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


# Every knob: name (its env: LOOOP_ then the name in capitals), default (- none), kind (+c: a config
# key too), minimum (- none), maximum, what it is; a line that starts with a space goes on with the
# one above. Upper bounds: long enough for any real use, short enough that no sleep, deadline or
# allocation built from them can overflow. worker_port_base: below the ephemeral ports (Linux
# 32768-60999, macOS 49152+), which an outgoing connection may take between a lease and the worker's
# bind. pulse_*: the pulse's own restartPolicy (its session's supervisor): a crash restarts it after
# a delay doubling from the first to the cap; a heartbeat older than its promise plus the watchdog's
# grace restarts it too. session_log_*: a chatty worker cannot fill the disk: 16 MiB (the window a
# dead screenshot replays) x 4, at most 64 MiB a session. worker_max_*: a worker's bounds
# (core/limits, loop/diskcheck); 0 turns one off.
_TABLE = """\
interval                         60 int+c       1      day idle cadence (s)
busy_interval                     - int+c       1      day cadence after a move (s)
active_interval                   - int+c       1      day cadence while a worker lives (s)
max_next_interval               300 int+c       5      day cap on the AI's nudge (s)
session_ttl                  259200 int+c       0   decade corpse retention (s)
worktree_keep_days               14 int+c       3     3660 kept (days)
worker_port_base              24000 int+c    1024    65535 port
worker_ports                   1000 int+c       1    64512 ports leased
max_daily_usd                  10.0 float+c     -      1e9 daily budget, <=0 off
refuse_unmetered              false bool+c      0        0 with a daily budget on, refuse starting a
                                                           worker looop cannot meter
sensor_timeout                   60 int         0      day per-sensor timeout (s), 0 off
sensor_max_bytes               8192 int         0 67108864 snapshot size cap, 0 off
runs_keep                        50 int         0    count runs/ kept, 0 keeps all
tick_timeout_secs              1800 int         0     week runner deadline (s)
shell_timeout_secs              300 int         0     week run_shell deadline (s)
backoff_max_secs                300 int         1      day failure backoff cap (s)
playbook_keep                    20 int         0    count PLAYBOOK versions kept in playbook.d/
prompt_max_bytes             262144 int         0 67108864 total prompt cap (bytes): whole goals and
                                                           readings past it left out, 0 off
noop_ttl                      21600 int         0   decade re-decide an old noop (s), 0 off
max_decides_per_hour            120 int         0    count hourly decide cap, 0 off
coalesce                          5 int+c       0       60 changes within this many seconds make one
                                                           decide (s), 0 off
flap_streak                       5 int         0    count v1.0's flap switch: 0 turns damping off
flap_window                       5 int+c       2     1000 beats of signal history per sensor for
                                                           flap detection
flap_high                      30.0 float+c     0      100 weighted % of changed beats that starts
                                                           flapping, 0 off
flap_low                       20.0 float+c     0      100 weighted % below which a flapping sensor
                                                           has settled
notify_failure_streak             3 int+c       0    count tell the human after this many failed
                                                           beats in a row, 0 off
notify_drain_secs                10 float       0      day a one-shot command waits this long at
                                                           exit for notifications on their way
tells_consumed_keep_secs     604800 int         0   decade a tell already read is kept this long in
                                                           tells/consumed/ (s)
max_workers                       8 int         0    10000 fleet cap, 0 off
worker_stuck_secs               900 int         0   decade a silent live worker counts as stuck
worker_stall_after                3 int         0    count same failures in a row: stalled
verify_timeout_secs              60 int         1     week one verify command's deadline
verify_beat_budget_secs         120 int         1     week all verifies in one beat
journal_max_bytes           5242880 int         0    bytes journal rotation size
events_max_bytes            5242880 int         0    bytes events.jsonl rotation size
runner_retries                    0 int         0      100 extra runner attempts on a matched
                                                           provider error
runner_retry_sleep                3 int         0     3600 seconds x attempt between retries
shell_allow_dangerous         false bool        0        0 disable the shell tripwire
ask_poll_ms                    1000 int        10    60000 `looop ask` answer poll
ask_timeout_s                     0 float       0   decade `looop ask` gives up after (s), 0 waits
                                                           forever
wait_poll_ms                   1000 int        10    60000 `looop wait` poll
pulse_restart_secs                1 float    0.01      day first delay before a crashed pulse
                                                           restarts (s), doubling
pulse_restart_max_secs           60 float    0.01      day cap of the pulse's restart delay (s)
pulse_watchdog_secs             120 float       0      day restart a pulse this long past its
                                                           promised heartbeat (s); 0 off
session_host_idle               300 float       0      day a data dir's preloaded session host lives
                                                           while one of its sessions does, then
                                                           exits after this long unused (s, at most
                                                           10); 0: no host
session_log_max_bytes      16777216 int     65536    bytes a session's output.log rotates at this
                                                           size (bytes)
session_log_max_files             4 int         2     1000 a session's log files kept, rotated and
                                                           earlier runs' counted
worker_max_pids                 512 int+c       0    count processes a worker may run at once
worker_max_memory        4294967296 int+c       0    bytes memory a worker may use (bytes)
worker_max_disk          2147483648 int+c       0    bytes bytes a worker may keep in its own
                                                           folders
"""
_BOUNDS = dict(day=86400, week=7 * 86400, decade=3660 * 86400, count=1_000_000, bytes=1 << 40)


def _num(text: str) -> Any:
    if text == "-":
        return None
    if text in ("true", "false"):
        return text == "true"
    if text in _BOUNDS:
        return _BOUNDS[text]
    return int(text) if text.isdigit() else float(text)


_ROWS = _TABLE.replace("\n ", " ").splitlines()  # a continuation joins its row
KNOBS: dict[str, Knob] = {k.name: k for k in map(Knob, _ROWS)}


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
        v = self.values.get(f"{kind}_interval") if kind in ("busy", "active") else None
        return int(v) if v is not None else self.num("interval")


# Every key a config may hold besides the knobs (both shapes); anything else is a typo or a
# knob that lives only in the environment, and is warned about, never fatal.
_RUNNING = "default runners tick_command tick worker_command resume_command interactive runner cost"
_OTHERS = "notification notify_urls prices shell_policy sandbox web mcp land worktree v"
_TOP_KEYS = (*_RUNNING.split(), *_OTHERS.split())
_RUNNER_KEYS = ("tick", "worker", "interactive", "cost", "sandbox", "resume", "needs_input")


def unknown_key_warnings(cfg: ConfigLike) -> list[str]:
    """One line per key looop does not read, with the nearest known key or the env knob."""
    known = [*_TOP_KEYS, *(k.config_key for k in KNOBS.values() if k.config_key)]
    out: list[str] = []

    def near(key: str, choices: list[str]) -> str:
        close = nearest(key, choices, 1)
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
