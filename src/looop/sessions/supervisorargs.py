"""The supervisor's command line, `--flag value` pairs before the command's `--`, read into
`Args`. Apart from supervisor.py because it is the one contract between the spawner, the
session host and a supervisor: a tolerant parse of plain strings, kept forward compatible."""

from __future__ import annotations

from looop.home import logfiles
from looop.sessions.control import MAX_SIZE
from looop.sessions.hostnames import options


class Args:
    """What the command line says (a plain class: no dataclass machinery at start). A
    tolerant parse: unknown `--flag value` pairs are skipped (forward compatibility)."""

    def __init__(self, argv: list[str]) -> None:
        opts, self.cmd = options(argv)
        num = {k: int(v) for k, v in opts.items() if v.isdecimal()}
        ms = {k: v / 1000.0 for k, v in num.items() if v > 0}  # the `-ms` ones: 0 is none
        self.sid, self.root = opts.get("--id", ""), opts.get("--root", "")
        c, _, r = opts.get("--size", "").lower().partition("x")
        sized = c.isdecimal() and r.isdecimal() and int(c) > 0 and int(r) > 0
        self.cols, self.rows = (min(int(c), MAX_SIZE), min(int(r), MAX_SIZE)) if sized else (80, 24)
        self.timeout_s, self.idle_timeout_s = ms.get("--timeout-ms"), ms.get("--idle-timeout-ms")
        self.ready_fd = num.get("--ready-fd")
        self.end_note = opts.get("--end-note") or None  # the child's end note (Lifecycle)
        self.box_tty = opts.get("--box-tty") == "1"  # the child takes the PTY in its box (ctty)
        # output.log rotates at this size into at most this many files; below the floor a
        # rotation per batch would cost the pump: raised to it
        self.log_max = max(logfiles.MIN_BYTES, num.get("--log-max-bytes", logfiles.MAX_BYTES))
        self.log_files = max(logfiles.MIN_FILES, num.get("--log-max-files", logfiles.MAX_FILES))
        first = ms.get("--restart-ms")  # on failure: (first delay, cap)
        self.restart = None if first is None else (first, max(first, ms.get("--restart-max-ms", 0)))
        self.final_exit = num.get("--final-exit")  # the exit code that is never restarted
        # the child rewrites it: seconds until the next, then its own words; the grace past
        # that promise before a restart
        watched, grace = opts.get("--watchdog-file", ""), ms.get("--watchdog-ms")
        watching = grace is not None and watched.startswith("/")
        self.watchdog_file, self.watchdog_s = (watched, grace) if watching else ("", None)
        self.max_pids = num.get("--max-pids", 0)  # the run's bounds (core/limits), 0: none
        self.max_memory = num.get("--max-memory-bytes", 0)  # bytes
        self.restarts = num.get("--restarts", 0)  # counted before this supervisor (a lost one's)
        cause = "".join(c for c in opts.get("--last-cause", "") if c.isprintable())
        self.last_cause = cause[:300] or None  # … and why the last of them happened
