"""One multiplexed OpenSSH connection per host, and every remote verb over it.

The user's own `ssh` does the work: their config, keys and known_hosts (a host's record may
name a config file of its own: `ssh -F`). looop adds a ControlMaster whose socket lives in
its private run dir, BatchMode (never a prompt), a connect timeout and keep-alives, so a dead
link is noticed in seconds. Every remote verb is `ssh -S CTL HOST -- <remote looop> ARGS`,
the command line quoted word by word (shlex), never a string a worker id could break out of."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from looop.core.context import Ctx
from looop.home import jsonio, where
from looop.home.hashing import fnv1a_64
from looop.remote import hosts as reg
from looop.remote.hosts import Host, HostError
from looop.workers.errors import HostUnreachable

CONNECT_TIMEOUT_S = 5
ALIVE_INTERVAL_S = 2
ALIVE_COUNT = 3  # a link silent for interval x count seconds is given up: `unreachable`
OP_TIMEOUT_S = 30.0
PROTOCOL = 2  # the satellite's JSON verbs, both ends the same (2: land carries the tips approved)
VENV = ".local/share/looop/venv"  # where `looop host install` puts looop on a host
SATELLITES = ".local/share/looop/satellite"  # under the host's $HOME: one data dir per home

# Runs on the host: the user-level venv's looop, else one on PATH, else one line and 127.
_FIND = (
    f'v="$HOME/{VENV}/bin/looop"; '
    'if [ -x "$v" ]; then exec "$v" "$@"; fi; '
    'if command -v looop >/dev/null 2>&1; then exec looop "$@"; fi; '
    'echo "looop is not installed on this host" >&2; exit 127'
)


class Unreachable(HostError, HostUnreachable):
    """The host does not answer: its workers are `unreachable`, not dead."""


@dataclass(frozen=True)
class Link:
    data: Path
    host: Host
    env: dict[str, str] | None  # None: this process's own (what ssh and the relay inherit)
    bin: str  # how the home calls its own looop (the relay)

    @property
    def run_dir(self) -> str:
        """The home's runtime dir ($LOOOP_RUNTIME_DIR's), where its other sockets live too."""
        return where.runtime_dir(where.runtime_base(os.environ if self.env is None else self.env))

    def _socket(self, form: str) -> str:
        # short: a unix socket path must stay under 108 bytes
        tag = fnv1a_64(f"{self.data}\0{self.host.name}".encode())
        return os.path.join(self.run_dir, form.format(tag))

    @property
    def control(self) -> str:
        return self._socket("ssh-{}")

    @property
    def relay_socket(self) -> str:
        return self._socket("relay-{}.sock")

    @property
    def key(self) -> str:
        return reg.key(self.data, self.host.name, socket.gethostname())

    def base(self) -> list[str]:
        argv = ["ssh"]
        if self.host.ssh_config:
            argv += ["-F", self.host.ssh_config]
        opts = ["BatchMode=yes", f"ConnectTimeout={CONNECT_TIMEOUT_S}"]
        opts += [f"ServerAliveInterval={ALIVE_INTERVAL_S}", f"ServerAliveCountMax={ALIVE_COUNT}"]
        argv += _options(*opts, f"ControlPath={self.control}")
        if self.host.port:
            argv += ["-p", str(self.host.port)]
        if self.host.user:
            argv += ["-l", self.host.user]
        return argv

    def master_up(self) -> bool:
        """The master answers on its control socket (no ssh process spawned to ask)."""
        return _answers(self.control)

    def start_master(self) -> None:
        """One connection for every verb to this host, kept until `host rm`/`down` (or the
        link dies: the next verb starts a fresh one)."""
        os.makedirs(self.run_dir, mode=0o700, exist_ok=True)
        errlog = Path(self.run_dir) / f"ssh-{self.host.name}.err"
        with open(errlog, "wb") as err:
            opts = _options("ControlMaster=yes", "ControlPersist=yes", "ExitOnForwardFailure=no")
            done = subprocess.run(
                [*self.base(), "-M", "-N", "-f", *opts, "--", self.host.host],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,  # a ^C at the terminal leaves the master be
                timeout=CONNECT_TIMEOUT_S * 3,
                env=self.env,
            )
        if done.returncode != 0 or not self.master_up():
            why = _last_line(errlog.read_text(errors="replace")) or f"ssh exit {done.returncode}"
            raise Unreachable(f"host {self.host.name} ({self.host.url}) does not answer: {why}")

    def stop_master(self) -> None:
        if self.master_up():
            self._control("exit")

    def _control(self, *verb: str) -> None:
        """Tell the master (`ssh -O`) to exit or to forward."""
        argv = [*self.base(), "-O", *verb, "--", self.host.host]
        subprocess.run(argv, capture_output=True, timeout=10, env=self.env)

    def ensure(self) -> None:
        """The master up, the relay running and forwarded to the host (once per master)."""
        if self.master_up():
            return
        self.start_master()
        start_relay(self.relay_socket, self.host.name, self.data, self.bin, self.env)
        try:
            hello = self.call("hello", {"fresh": True})
        except Unreachable:
            raise
        except HostError:
            return  # no usable looop there yet (`host install` is on its way): no channel
        remote = hello.get("relay")
        if isinstance(remote, str) and remote:
            self._control("forward", "-R", f"{remote}:{self.relay_socket}")

    def remote_argv(
        self, args: list[str], tty: bool = False, here: str = "", script: str = _FIND
    ) -> list[str]:
        """The ssh argv that runs the host's looop (or `script`) with `args`, over the master
        (`here`: shell set-up run on the host first)."""
        line = shlex.join(["sh", "-c", here + script, "looop", *args])
        tty_flag = "-t" if tty else "-T"
        return [*self.base(), "-o", "ControlMaster=no", tty_flag, "--", self.host.host, line]

    def call(self, op: str, req: dict[str, Any], timeout: float = OP_TIMEOUT_S) -> dict[str, Any]:
        """One satellite verb: JSON in, JSON out; the host's errors come back as HostError."""
        if not self.master_up():
            self.ensure()
        body = jsonio.dumps({"v": PROTOCOL, **req})
        try:
            done = subprocess.run(
                self.remote_argv(["satellite", self.key, op]),
                input=body.encode(),
                capture_output=True,
                timeout=timeout,
                env=self.env,
            )
        except subprocess.TimeoutExpired:
            raise Unreachable(f"host {self.host.name} did not answer within {timeout:g}s") from None
        return self._answer(op, done)

    def _answer(self, op: str, done: subprocess.CompletedProcess[bytes]) -> dict[str, Any]:
        err = done.stderr.decode(errors="replace")
        if done.returncode == 255:  # ssh's own failure: the link, not the verb
            # a master that died with its link says nothing: never a colon with no cause
            why = _last_line(err)
            raise Unreachable(
                f"host {self.host.name} does not answer"
                + (f": {why}" if why else " (the link dropped)")
            )
        if done.returncode == 127 and "not installed" in err:
            raise HostError(
                f"looop is not installed on host {self.host.name} — "
                f"run `looop host install {self.host.name}`"
            )
        try:
            out = jsonio.loads(done.stdout.decode() or "null")
        except ValueError:
            out = None
        if not isinstance(out, dict):
            raise HostError(
                f"host {self.host.name}: `satellite {op}` gave no answer "
                f"({_last_line(err) or f'exit {done.returncode}'}) — `looop host check "
                f"{self.host.name}` says why"
            )
        if out.get("error"):
            raise HostError(str(out["error"]))
        return out

    def passthrough(self, args: list[str], tty: bool = False) -> int:
        """Run a human verb on the host's satellite: its output streams straight through."""
        self.ensure()
        # the verb runs as `satellite KEY run` would run it — in this home's satellite data
        # dir, without the host's own config — but in one interpreter on the host, not two
        here = (
            f'export LOOOP_DATA_DIR="$HOME/{SATELLITES}/{self.key}"; unset LOOOP_CONFIG; '
            'case "$HOME" in /*) ;; *) echo "HOME is not set on this host" >&2; exit 2;; esac; '
        )
        done = subprocess.run(self.remote_argv(args, tty=tty, here=here), env=self.env)
        if done.returncode == 255:
            raise Unreachable(f"host {self.host.name} does not answer (the link dropped)")
        return done.returncode


def _answers(path: str) -> bool:
    """Something listens on the unix socket `path`."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(1.0)
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def start_relay(
    path: str, host: str, data: Path, looop_bin: str, env: Mapping[str, str] | None
) -> None:
    """Start this host's relay (`looop host relay`, listening on `path`) when none answers,
    and wait until it does. `env`: the home's own (None: this process's): it runs verbs. The
    relay is a process of its own (relay.py): a verb here never loads its server."""
    if _answers(path):
        return
    run_env = dict(os.environ if env is None else env)
    run_env["LOOOP_DATA_DIR"] = str(data)
    errlog = data / "hosts" / f".{host}.relay.err"
    with open(errlog, "ab") as err:
        subprocess.Popen(
            [looop_bin, "host", "relay", host, path],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
            env=run_env,
            cwd=str(data),
        )
    end = time.monotonic() + 10
    while time.monotonic() < end:
        if _answers(path):
            return
        time.sleep(0.05)
    sys.stderr.write(f"looop: the relay for host {host} did not start (see {errlog})\n")


def _options(*opts: str) -> list[str]:
    return [word for opt in opts for word in ("-o", opt)]


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def link(ctx: Ctx, name: str) -> Link:
    return Link(ctx.paths.data, reg.get(ctx.paths.data, name), dict(ctx.env), ctx.bin)


def link_at(data: Path, host: Host) -> Link:
    """A link for readers without a Ctx (`looop ls` on its fast path): this process's env."""
    here = os.path.join(os.path.dirname(sys.executable), "looop")
    return Link(data, host, None, here if os.path.exists(here) else "looop")
