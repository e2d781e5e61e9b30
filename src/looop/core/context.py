"""The one object every room receives: paths, clock, environment, events."""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from looop.core.events import Emitter, emitter_for
from looop.home.clock import Clock
from looop.home.config import Config, Knobs, knobs_at, load_config, parse_config, resolve_knobs
from looop.home.paths import Paths
from looop.home.where import program_on
from looop.runners.presets import default_config_obj

if TYPE_CHECKING:
    from looop.core.cgroup import Pen  # a pulse's: os, select, signal for a type

WARNED_MAX = 256  # distinct config warnings a long-lived process remembers


@dataclass(eq=False, repr=False)
class Interrupt:
    """Stops asked during a beat (Ctrl-C, SIGTERM): the first is said and the beat goes on; a
    second abandons its decide (the runner's process group ends, no move runs)."""

    deciding: str = ""  # the runner deciding now, if any
    presses: int = 0
    abandon: threading.Event = field(default_factory=threading.Event)

    def press(self) -> str | None:
        """The first stop's line (what the beat waits for); a second sets abandon."""
        self.presses += 1
        if self.presses > 1:
            self.abandon.set()
            return None
        what = f"{self.deciding} to decide" if self.deciding else "this beat to finish"
        return f"waiting for {what}; a second Ctrl-C abandons the beat"


@dataclass(eq=False, repr=False)
class Ctx:
    paths: Paths
    clock: Clock
    env: Mapping[str, str]
    events: Emitter
    bin: str = "looop"
    warned: set[str] = field(default_factory=set)
    pen: Pen | None = None  # a long-lived beat's sensors' cgroup, kept between beats (the pulse)
    interrupt: Interrupt = field(default_factory=Interrupt)

    def config(self) -> Config:
        """Read fresh on every use: a human edit takes effect on the next beat."""
        return load_config(self.paths.config, default_config_obj())

    def knobs(self, cfg: Config | None = None) -> Knobs:
        """env > `cfg` > defaults. Without `cfg` the file is read now (a beat passes the one it
        read). A broken config is said once (config.warn) and the defaults stand, so a verb
        that only needs a knob still works; a verb that needs the config reports it itself."""
        if cfg is None:
            return knobs_at(self.paths.config, default_config_obj(), self.env, self.warn_once)
        return resolve_knobs(cfg, self.env, self.warn_once)

    def default_knobs(self) -> Knobs:
        """env > defaults, no config: what runs while the config is broken."""
        builtin = parse_config(default_config_obj(), "<default>")
        return resolve_knobs(builtin, self.env, self.warn_once)

    def warn_once(self, msg: str) -> None:
        if self.first_time(msg):
            self.events.emit("warn", "config.warn", msg)

    def first_time(self, msg: str) -> bool:
        """Whether this process has not said `msg` yet (it is then counted as said)."""
        if msg in self.warned:
            return False
        if len(self.warned) >= WARNED_MAX:  # a pulse edited for weeks: said again, not kept
            self.warned.clear()
        self.warned.add(msg)
        return True

    def child_env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """What sensors, runners, shells and workers inherit: our env plus the LOOOP_* paths."""
        env = dict(self.env)
        p = self.paths
        env.update(
            LOOOP_BIN=self.bin,
            LOOOP_DATA_DIR=str(p.data),
            LOOOP_CONFIG=str(p.config),
            LOOOP_CLAIMS_DIR=str(p.claims),
            LOOOP_REPORTS_DIR=str(p.reports),
            LOOOP_COST_LEDGER=str(p.cost_ledger),
            LOOOP_LOG_FORMAT=self.events.fmt,
            LOOOP_COLOR="1" if self.events.color else "0",
        )
        if extra:
            env.update(extra)
        return env


def looop_bin(env: Mapping[str, str]) -> str:
    """How children call us back: the console script beside this interpreter, else on the
    env's PATH (a looop run from outside its venv)."""
    here = Path(sys.executable).parent / "looop"
    if here.exists():
        return str(here)
    return program_on("looop", env.get("PATH", "")) or "looop"


def ctx_for(env: Mapping[str, str], clock: Clock, events_to: str | None = "stderr") -> Ctx:
    """events_to: "stdout" for the pulse log, "stderr" for verbs whose stdout is data, or None."""
    paths = Paths.resolve(env, Path.cwd())
    em = emitter_for(env, clock, paths.events, events_to)
    return Ctx(paths=paths, clock=clock, env=env, events=em, bin=looop_bin(env))
