"""Config: both shapes (named runners, flat), validated with each bad value naming its key,
plus the shell policy and price rows. Knobs live in home/knobs (re-exported here for the rooms
that import them from config); a missing file reads as the default its caller passes (the
presets: runner profiles sit above the home); the sandbox setting, needs-input patterns and
hook lines are parsed by their own modules (sandboxpolicy, screenrules, hookline). And the
optional parts (the extras) a config or a verb switches on: here, not in home/errors, so the
contract verbs, which never read a config, never load importlib."""

from __future__ import annotations

import importlib
import re
from typing import TYPE_CHECKING, NamedTuple

from looop.home import jsonio, store
from looop.home.errors import LooopError, bad_config_value
from looop.home.hookline import HookLineError, hook_line
from looop.home.knobs import KNOBS, Knobs, knob_lines, resolve_knobs
from looop.home.sandboxpolicy import config_sandbox, resolve
from looop.home.screenrules import parse_patterns

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path
    from re import Pattern
    from typing import Any, Literal

    from looop.home.sandboxpolicy import SandboxPolicy


class CostSpec(NamedTuple):
    type: str
    pointer: str
    mode: Literal["sum", "total"] = "sum"


class Runner(NamedTuple):
    name: str
    tick: str | None
    worker: str | None
    cost: CostSpec | None = None
    sandbox: SandboxPolicy | None = None  # None: the top-level setting decides
    resume: str | None = None  # how a worker is started again on its conversation; None: never
    needs_input: tuple[str, ...] = ()  # home/screenrules: its workers' waiting-screen patterns


SHELL_MODES = ("tripwire", "off")


class ShellPolicy:
    """`shell_policy`: the built-in run_shell tripwire on or off, plus the user's own patterns."""

    __slots__ = ("_sandbox", "allow", "decider", "deny", "mode")

    def __init__(
        self,
        mode: str = "tripwire",
        deny: tuple[Pattern[str], ...] = (),
        allow: tuple[Pattern[str], ...] = (),
        sandbox: SandboxPolicy | None = None,
    ) -> None:
        self.mode = mode
        self.deny = deny
        self.allow = allow
        self._sandbox = sandbox
        # the decide call's (its runner's `sandbox`, the top level's): what the decider asks
        # for runs in the same walls unless this policy says otherwise
        self.decider: tuple[SandboxPolicy | None, SandboxPolicy | None] = (None, None)

    @property
    def sandbox(self) -> SandboxPolicy:
        """run_shell inside srt: its own setting, else the decider's, else OFF."""
        return self._sandbox if self._sandbox is not None else _resolve(*self.decider)

    def __repr__(self) -> str:
        pats = [p.pattern for p in self.deny], [p.pattern for p in self.allow]
        return f"ShellPolicy({self.mode!r}, deny={pats[0]!r}, allow={pats[1]!r})"


class Config(NamedTuple):
    default: str | None
    runners: dict[str, Runner]
    raw: dict[str, Any]
    shell_policy: ShellPolicy
    source: str = "<default>"
    exists: bool = False
    sandbox: SandboxPolicy | None = None  # None: not set (off until sandbox-by-default lands)

    def runner(self, name: str | None = None) -> Runner | None:
        key = name if name is not None else self.default
        return self.runners.get(key) if key is not None else None

    def decider(self) -> SandboxPolicy:
        """The decide call's box: its runner's `sandbox`, else the top level's (as its workers')."""
        r = self.runner()
        return _resolve(r.sandbox if r is not None else None, self.sandbox)


def _resolve(runner: SandboxPolicy | None, top: SandboxPolicy | None) -> SandboxPolicy:

    return resolve(None, runner, top)


# placeholders earlier versions filled in and looop no longer does: left in a command they
# would reach the agent CLI as literal text, so they are refused with what to write instead
REMOVED_PLACEHOLDERS = {
    "{{model}}": "write the model into the command itself (e.g. `--model opus`), or add one "
    "runner per model",
    "{{thinking}}": "write the thinking level into the command itself (e.g. `--thinking low`), "
    "or add one runner per level",
}


def removed_placeholder(command: str) -> str | None:
    """What to say about a placeholder looop no longer fills in, None when there is none."""
    for name, instead in REMOVED_PLACEHOLDERS.items():
        if name in command:
            return f"{name} is no longer filled in: {instead}"
    return None


def _opt_str(obj: Mapping[str, Any], key: str, source: str, where: str) -> str | None:
    v = obj.get(key)
    if v is None:
        return None
    if not isinstance(v, str):
        raise bad_config_value(source, f"{where}{key}", "a string", v)
    if "{{" in v and (why := removed_placeholder(v)) is not None:
        raise LooopError(f"config {source}: key '{where}{key}': {why}")
    return v if v.strip() else None


def _cost_spec(v: Any, source: str, where: str) -> CostSpec | None:
    if v is None:
        return None
    if not isinstance(v, dict):
        raise bad_config_value(source, where, 'an object {"type","pointer","mode"}', v)
    t, p, m = v.get("type"), v.get("pointer"), v.get("mode", "sum")
    if not isinstance(t, str) or not isinstance(p, str):
        raise bad_config_value(source, where, 'an object with string "type" and "pointer"', v)
    if p and not p.startswith("/"):
        raise bad_config_value(source, f"{where}.pointer", "a JSON pointer starting with '/'", p)
    if m not in ("sum", "total"):
        raise bad_config_value(source, f"{where}.mode", '"sum" or "total"', m)
    return CostSpec(type=t, pointer=p, mode=m)


def parse_config(obj: Any, source: str) -> Config:
    """Validate a parsed config object; a bad value names its key."""
    if not isinstance(obj, dict):
        raise LooopError(f"config {source}: must be a JSON object")
    if "runners" in obj:
        runners, default = _named_runners(obj, source)
    else:
        runners, default = _single_runner(obj, source)
    for knob in KNOBS.values():
        if knob.config_key and knob.config_key in obj:
            knob.from_config(obj[knob.config_key], source)
    _check_flap(obj, source)
    _check_extra(obj, source)
    sandbox = _sandbox_key(obj, source, "")
    policy = _shell_policy(obj.get("shell_policy"), source)
    r = runners.get(default) if default is not None else None
    policy.decider = (r.sandbox if r is not None else None, sandbox)
    return Config(default, runners, obj, policy, source, True, sandbox)


def _named_runners(obj: dict[str, Any], source: str) -> tuple[dict[str, Runner], str | None]:
    """The `runners` object and the `default` that names one of them."""
    runners: dict[str, Runner] = {}
    rs = obj["runners"]
    if not isinstance(rs, dict):
        raise bad_config_value(source, "runners", "an object of runner name -> {tick, worker}", rs)
    for name, spec in rs.items():
        if not isinstance(spec, dict):
            raise bad_config_value(source, f"runners.{name}", "an object {tick, worker}", spec)
        where = f"runners.{name}."
        worker = _opt_str(spec, "worker", source, where)
        if worker is None:
            worker = _opt_str(spec, "interactive", source, where)
        runners[name] = Runner(
            name=name,
            tick=_opt_str(spec, "tick", source, where),
            worker=worker,
            cost=_cost_spec(spec.get("cost"), source, f"runners.{name}.cost"),
            sandbox=_sandbox_key(spec, source, where),
            resume=_opt_str(spec, "resume", source, where),
            needs_input=_needs_input(spec, source, where),
        )
    d = obj.get("default")
    if d is not None and not isinstance(d, str):
        raise bad_config_value(source, "default", "a runner name", d)
    if d is not None and d not in runners:
        names = ", ".join(sorted(runners)) or "none"
        raise LooopError(
            f"config {source}: key 'default' names runner '{d}', which is not under "
            f"'runners' (have: {names})"
        )
    return runners, d


def _single_runner(obj: dict[str, Any], source: str) -> tuple[dict[str, Runner], str]:
    """The older flat form: one runner from the top-level commands, named by `runner`."""
    runners: dict[str, Runner] = {}
    tick = _opt_str(obj, "tick_command", source, "")
    if tick is None:
        tick = _opt_str(obj, "tick", source, "")
    worker = _opt_str(obj, "worker_command", source, "")
    if worker is None:
        worker = _opt_str(obj, "interactive", source, "")
    name = obj.get("runner", "custom")
    if not isinstance(name, str) or not name:
        raise bad_config_value(source, "runner", "a runner name", name)
    runners[name] = Runner(
        name=name,
        tick=tick,
        worker=worker,
        cost=_cost_spec(obj.get("cost"), source, "cost"),
        resume=_opt_str(obj, "resume_command", source, ""),
    )
    return runners, name


def _check_flap(obj: Mapping[str, Any], source: str) -> None:
    """flap_low below flap_high: at or above it a flapping sensor could never settle."""
    high = float(obj.get("flap_high", KNOBS["flap_high"].default))
    low = float(obj.get("flap_low", KNOBS["flap_low"].default))
    if high > 0 and low >= high:
        raise LooopError(
            f"config {source}: key 'flap_low' ({low:g}) must be below 'flap_high' ({high:g}), "
            "or a flapping sensor never settles — lower flap_low or raise flap_high"
        )


def _needs_input(spec: Mapping[str, Any], source: str, where: str) -> tuple[str, ...]:
    if "needs_input" not in spec:
        return ()

    return parse_patterns(spec["needs_input"], source, where)


def _sandbox_key(obj: Mapping[str, Any], source: str, where: str) -> SandboxPolicy | None:
    """The object's `sandbox` key parsed, None when absent."""
    if "sandbox" not in obj:
        return None

    return config_sandbox(dict(obj), "sandbox", source, where)


def _check_extra(obj: Mapping[str, Any], source: str) -> None:
    n = obj.get("notification")
    if n is not None and not isinstance(n, str):
        raise bad_config_value(source, "notification", "a shell command string", n)
    if n is not None and "{{" in n:
        try:
            hook_line(n)
        except HookLineError as e:
            raise LooopError(f"config {source}: key 'notification': {e}") from None
    urls = obj.get("notify_urls")
    if urls is not None and not (isinstance(urls, list) and all(isinstance(u, str) for u in urls)):
        raise bad_config_value(source, "notify_urls", "a list of apprise URL strings", urls)
    prices = obj.get("prices")
    if prices is not None and not isinstance(prices, dict):
        raise bad_config_value(
            source, "prices", "an object of model -> {input, output} USD per 1M", prices
        )
    for model, row in (prices or {}).items():
        _check_price_row(row, source, f"prices.{model}")


_SHELL_POLICY_SHAPE = '"tripwire", "off" or an object {"mode", "deny", "allow", "sandbox"}'


def _shell_policy(v: Any, source: str) -> ShellPolicy:
    """`shell_policy`: "tripwire" (default) | "off" | {"mode", "deny": [re], "allow": [re]}."""
    if v is None:
        return ShellPolicy()
    if isinstance(v, str):
        if v not in SHELL_MODES:
            raise bad_config_value(source, "shell_policy", _SHELL_POLICY_SHAPE, v)
        return ShellPolicy(v)
    if not isinstance(v, dict):
        raise bad_config_value(source, "shell_policy", _SHELL_POLICY_SHAPE, v)
    for key in v:
        if key not in ("mode", "deny", "allow", "sandbox"):
            raise bad_config_value(
                source, f"shell_policy.{key}", 'one of "mode", "deny", "allow", "sandbox"', key
            )
    mode = v.get("mode", "tripwire")
    if not isinstance(mode, str) or mode not in SHELL_MODES:
        raise bad_config_value(source, "shell_policy.mode", '"tripwire" or "off"', mode)
    return ShellPolicy(
        mode,
        _shell_patterns(v.get("deny"), source, "deny"),
        _shell_patterns(v.get("allow"), source, "allow"),
        _sandbox_key(v, source, "shell_policy."),
    )


def _shell_patterns(v: Any, source: str, key: str) -> tuple[Pattern[str], ...]:
    if v is None:
        return ()
    if not isinstance(v, list) or not all(isinstance(p, str) for p in v):
        raise bad_config_value(source, f"shell_policy.{key}", "a list of Python regex strings", v)
    if not v:
        return ()

    out = []
    for n, p in enumerate(v):
        try:
            out.append(re.compile(p))
        except re.error as e:
            where = f"shell_policy.{key}[{n}]"
            raise bad_config_value(source, where, f"a valid Python regex ({e})", p) from None
    return tuple(out)


PRICE_FIELDS = ("input", "output", "cached_input", "cache_write")


def _check_price_row(row: Any, source: str, where: str) -> None:
    """One price row: USD per 1M tokens, each field a finite number >= 0 (a typo is an error)."""
    if not isinstance(row, dict):
        raise bad_config_value(
            source, where, "an object {input, output, cached_input} of USD per 1M", row
        )
    for key, v in row.items():
        if key not in PRICE_FIELDS:
            raise bad_config_value(
                source, f"{where}.{key}", "one of " + ", ".join(PRICE_FIELDS), key
            )
        ok = isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v < float("inf")
        if not ok:
            raise bad_config_value(source, f"{where}.{key}", "a number >= 0 (USD per 1M tokens)", v)


def load_config(path: Path | str, default: Mapping[str, Any] | None = None) -> Config:
    """The config file, or `default` when it does not exist (the presets, which the caller
    passes: runner profiles sit above the home)."""

    try:
        raw = store.read_regular(path, 16 << 20)
    except FileNotFoundError:
        return parse_config(dict(default or {}), str(path))._replace(exists=False)
    except OSError as e:
        raise LooopError(f"config {path}: cannot read ({e.strerror})") from e
    if len(raw) > 16 << 20:
        raise LooopError(f"config {path}: over 16 MiB; fix or re-run `looop init`")
    try:
        obj = jsonio.safe_loads(raw.decode("utf-8"), max_int_digits=30)
    except ValueError as e:
        raise LooopError(f"config {path}: not valid JSON ({e}); fix or re-run `looop init`") from e
    return parse_config(obj, str(path))


def knobs_at(
    path: Path | str,
    default: Mapping[str, Any],
    env: Mapping[str, str],
    warn: Callable[[str], None],
) -> Knobs:
    """env > the config at `path` > defaults. A broken config is said (`warn`) and the defaults
    stand, so a verb that only needs a knob still works; a verb that needs the config reports
    it itself."""
    try:
        cfg = load_config(path, default)
    except LooopError as e:
        warn(f"{' '.join(str(e).split())} — using the default knobs meanwhile")
        cfg = parse_config(default, "<default>")
    return resolve_knobs(cfg, env, warn)


__all__ = ["KNOBS", "Knobs", "knob_lines", "resolve_knobs"]  # theirs, read from here


# each optional part's extra (pyproject's optional-dependencies) -> the module it brings: the
# config (notify_urls, web.mcp, a Kubernetes host) or a verb (`looop mcp`) that uses one loads it
EXTRAS = {"k8s": "kubernetes", "mcp": "mcp", "notify": "apprise"}


def need_extra(extra: str, what: str, error: type[LooopError] = LooopError) -> Any:
    """The extra's module; without it, one line naming the extra to install (`what` needs it)."""
    try:
        return importlib.import_module(EXTRAS[extra])
    except ImportError:
        raise error(f"{what} needs the {extra} extra: pip install 'looop[{extra}]'") from None
