"""run_shell: one command in the data dir, behind the shell gate and a write-ahead record,
its output kept for the next prompt."""

from __future__ import annotations

from dataclasses import dataclass

from looop.act.decision import DecisionError, Mover, Plain
from looop.act.outcome import ExecError
from looop.act.shell import ShellResult, run_shell
from looop.act.shellgate import decided_line, shell_guard
from looop.act.wal import intent
from looop.core.context import Ctx
from looop.core.text import one_line
from looop.home import store
from looop.home.hashing import digest


@dataclass(frozen=True)
class RunShell(Plain):
    tag = "run_shell"
    kind = "shell"
    teach = r"""run_shell{cmd,reason} - ONE reversible, non-destructive command; looop runs it in the data dir
with a timeout and shows you its output next beat.
  {"action":"run_shell","cmd":"git -C ~/src/app fetch --quiet","reason":"refresh branches"}"""  # noqa: E501

    cmd: str
    reason: str = ""

    def __post_init__(self) -> None:
        if not self.cmd.strip():
            raise DecisionError("run_shell: field 'cmd' must be a non-empty string")
        if "\x00" in self.cmd:
            raise DecisionError("run_shell: field 'cmd' must not contain NUL characters")

    def summary(self) -> str:
        return f"run-shell · {one_line(self.reason if self.reason.strip() else self.cmd)}"

    def perform(self, by: Mover) -> str | None:
        ctx = by.ctx
        shell_guard(by, self.cmd)
        if by.decided:  # a human's `looop run` is theirs to run as written
            decided_line(by, self.cmd, "run_shell", "run_shell")
        timeout = by.knobs.num("shell_timeout_secs")
        fingerprint = digest(store.encode(f"run_shell\n{self.cmd}"))
        with intent(ctx, by.actor, "shell", fingerprint, self.summary()):
            sandbox = by.config().shell_policy.sandbox
            res = run_shell(ctx, self.cmd, float(timeout), sandbox)
        _write_last_shell(ctx, self.cmd, res)
        what = one_line(self.reason if self.reason.strip() else self.cmd)
        if res.timed_out:
            raise ExecError(
                f"run_shell timed out after {timeout}s (LOOOP_SHELL_TIMEOUT_SECS): {what}"
            )
        if res.exit_code != 0:
            raise ExecError(f"run_shell exited {res.exit_code}: {what}")
        return None


def _write_last_shell(ctx: Ctx, cmd: str, res: ShellResult) -> None:
    """RUN_SHELL OUTPUT for the next prompt, written whatever the outcome."""
    rec = {
        "v": 1,
        "ts": int(ctx.clock.now()),
        "cmd": cmd,
        "exit_code": res.exit_code,
        "timed_out": res.timed_out,
        "secs": res.secs,
        "stdout": res.stdout,
        "stderr": res.stderr,
    }
    try:
        store.write_json(ctx.paths.last_shell, rec)
    except OSError as e:
        ctx.events.emit(
            "warn", "shell.output_lost", f"could not save run_shell output: {e.strerror or e}"
        )
