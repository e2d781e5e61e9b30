"""The per-session supervisor: `python -m looop.sessions.supervisor --id ID --root DIR … -- CMD…`.

One process per session, started by `client.spawn` (which sets its cwd and env). It forks
once more (so it is never a session leader and the spawner never keeps a zombie), takes the
session lock for life, runs CMD on a fresh PTY and serves the control socket, all on one
thread and one small epoll loop (`evloop.py`: no asyncio, no threads — a forked supervisor's
memory is the pages it touches, so it touches little; only a burst of output starts one
short-lived thread, the pump's log writer). This module is the wiring, its argv (`Args`: the
contract between the spawner, the session host and a supervisor), the entry point and the
keeper; the parts live next to it (states, lifecycle, pump, control, oscalls).
This is the only module that reads the real environment and clock. Everything it may need
later (the screen and avt, base64 for raw input) is imported with it (package files may be
replaced while a long session runs): once, in the session host, whose forks share it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import sys
import time

from looop.contract.answering import home_env
from looop.core.procstat import alive_not_looop, children, signal_tree, stat_fields
from looop.core.proctitle import show_role
from looop.home import logfiles, store, where
from looop.home.anchors import anchor
from looop.home.sessionfiles import (
    ENDED,
    LOCK,
    META,
    STATUS,
    SessionError,
    check_id,
    fnv1a_64,
    valid_id,
)
from looop.home.stamps import utc_stamp_ms
from looop.home.where import runtime_base
from looop.sessions import oscalls
from looop.sessions.control import MAX_SIZE, Control, SocketWatch
from looop.sessions.evloop import Loop, log, log_failure
from looop.sessions.hostdoor import SoleDoor
from looop.sessions.hostnames import options
from looop.sessions.lifecycle import Child, Lifecycle
from looop.sessions.oscalls import HostOS, set_subreaper
from looop.sessions.pump import Pump
from looop.sessions.states import SessionState, StatusBook

IDLE_CHECK_S = 0.5


# -- small helpers -----------------------------------------------------------------------


def _stamp() -> str:
    return utc_stamp_ms(time.time())


def say(fd: int | None, line: str) -> None:
    """A readiness line to its starter (who may no longer wait for it), then the fd closed."""
    if fd is None:
        return
    with contextlib.suppress(OSError):
        os.write(fd, (line.replace("\n", " ") + "\n").encode())
    with contextlib.suppress(OSError):
        os.close(fd)


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


# -- the supervisor ----------------------------------------------------------------------


class Supervisor:
    """Wires the parts together for one session and owns its lock, meta and ready line."""

    def __init__(self, args: Args, env: dict[str, str]) -> None:
        self.args = args
        self.host_os = HostOS(env)  # the OS seam, with the child's environment
        self.sid = args.sid
        self.root = args.root
        self.sdir = os.path.join(args.root, where.SESSIONS, args.sid)  # strings: no pathlib here
        self.log_dir = self.sdir  # the log files' folder: `log/` once the run begins
        self.argv = list(args.cmd)
        self.ready_fd = args.ready_fd
        self.lock_fd = -1
        self.book = StatusBook(self._write_status, _stamp, args.cols, args.rows)
        self.pump: Pump | None = None
        self.life: Lifecycle | None = None
        self.control: Control | None = None
        self.subreaper = True  # False only for the session host's rehearsal (see host._warm)
        self.contain = "none"  # what kills what a run leaves behind: cgroup or sweep
        self.locked = False
        self.watch: oscalls.HeartWatch | None = None  # the run's heartbeat, when it has a watchdog
        self.sock_watch: SocketWatch | None = None
        self.watched: Child | None = None  # the run it judges
        self.door: SoleDoor | None = None  # its worker's door, started without the host

    def _write_status(self, status: dict[str, object]) -> None:
        if status.get("state") in ("exited", "killed"):
            self.host_os.name_bound(status)
        try:
            store.write_json(os.path.join(self.sdir, STATUS), status)
        except OSError as e:
            log(f"cannot write status.json: {e}")
            return
        if status.get("state") in ("exited", "killed"):  # terminal: no state leaves it
            try:  # after the status it vouches for: listings pass this session at one stat
                os.close(os.open(os.path.join(self.sdir, ENDED), os.O_WRONLY | os.O_CREAT, 0o644))
            except OSError as e:
                log(f"cannot mark the session ended: {e}")

    def ready(self, line: str) -> None:
        fd, self.ready_fd = self.ready_fd, None
        say(fd, line)

    # ---- startup
    def take_lock(self) -> bool:
        if not os.path.isdir(self.sdir):  # the spawner made it (its supervisor.err is there)
            os.makedirs(self.sdir, exist_ok=True)
        self.lock_fd = os.open(
            os.path.join(self.sdir, LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644
        )
        # Readers probe with a brief shared lock; retry a little before calling it taken.
        for _ in range(100):
            try:
                fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                time.sleep(0.005)
        return False

    def write_meta(self) -> None:
        st = stat_fields(os.getpid())  # the start time (boot ticks) with the pid: no reuse
        meta = {
            "v": 1,
            "id": self.sid,
            "cmd": self.argv,
            "supervisor_pid": os.getpid(),
            "pid_start": int(st[19]) if st is not None and len(st) > 19 else None,
            "started_at": self.book.status["last_change"],
            "cwd": os.getcwd(),
            "contain": self.contain,
            "nproc": self.host_os.nproc,  # the room RLIMIT_NPROC gives each run (0: none)
        }
        group = self.host_os.group
        if group is not None:
            meta["cgroup"] = group.path  # so a dead supervisor's leftovers can still be killed
        if self.host_os.unbounded:  # asked for, but no cgroup holds it here
            meta["unbounded"] = self.host_os.unbounded
        store.write_json(os.path.join(self.sdir, META), meta)

    # ---- timers and signals
    def on_signal(self, signame: str) -> None:
        life = self.life
        if life is not None:
            life.task(life.auto_kill(f"supervisor got {signame}"))

    def idle_check(self) -> None:
        idle, life, pump = self.args.idle_timeout_s, self.life, self.pump
        if idle is None or life is None or pump is None or life.finishing:
            return
        quiet = life.loop.time() - pump.last_output
        if quiet >= idle:
            life.task(life.auto_kill(f"idle for {idle:g}s"))
            return
        life.loop.call_later(min(IDLE_CHECK_S, idle - quiet), self.idle_check)

    def memory_check(self) -> None:
        """Sample the run's memory against `host_os.memory_watch` bytes until the session
        ends; past it, end the run as the kernel's bound would."""
        life, host = self.life, self.host_os
        if life is None or life.finishing:
            return
        child = life.child
        run = [] if child is None or child.done or host.memory_hit else [child.pid]
        if run and oscalls.resident(sorted({*run, *host.contained(set())})) > host.memory_watch:
            host.memory_hit = True  # its status names the bound (HostOS.name_bound)
            life.task(life.auto_kill(f"hit its memory limit ({host.memory_watch >> 20} MiB)"))
            return
        life.loop.call_later(oscalls.MEMORY_CHECK_S, self.memory_check)

    def watchdog_check(self) -> None:
        """Restart a run whose heartbeat is older than its own promise plus the grace."""
        watch, life = self.watch, self.life
        if watch is None or life is None or life.finishing:
            return
        child = life.child
        if child is not None and child is not self.watched:  # a new run: judged from its start
            self.watched = child
            watch.begin()
        if child is not None and not child.done and not life.restarting:
            late = watch.late()
            if late is not None:
                life.watchdog_kill(f"watchdog: no heartbeat for {late:.0f}s")
        life.loop.call_later(watch.next_look(IDLE_CHECK_S), self.watchdog_check)  # no poll

    def serving(self) -> bool:
        """The control socket is still to be kept bound (a wiped runtime dir: bound again)."""
        return self.life is not None and not self.life.finishing

    def arm_timers(self, loop: Loop, life: Lifecycle) -> None:
        if self.args.timeout_s is not None:
            t = self.args.timeout_s
            loop.call_later(t, lambda: life.task(life.auto_kill(f"timed out after {t:g}s")))
        if self.args.idle_timeout_s is not None:
            loop.call_later(min(IDLE_CHECK_S, self.args.idle_timeout_s), self.idle_check)
        if self.args.watchdog_s is not None:
            # CLOCK_MONOTONIC stops while the machine sleeps: a resume is no silence
            self.watch = oscalls.HeartWatch(
                self.args.watchdog_file, self.args.watchdog_s, time.monotonic
            )
            self.watchdog_check()
        if self.control is not None:  # woken by the name's removal, never a poll
            self.sock_watch = SocketWatch(loop, self.control, self.serving)
            self.sock_watch.start()
        if self.host_os.memory_watch > 0:  # where no cgroup holds its memory bound
            loop.call_later(oscalls.MEMORY_CHECK_S, self.memory_check)

    # ---- main
    async def main(self, loop: Loop, log_fd: int) -> int:
        a = self.args
        pump = self.pump = Pump(
            loop, log_fd, a.cols, a.rows, time.monotonic, self.log_dir, a.log_max, a.log_files
        )  # a log lost to a full disk is tried again; the record (log_gap) says what it lost
        pump.keep_gaps(time.time, lambda note: self.book.update(log_gap=f"{self.sid}: {note}"))
        control = self.control = Control(loop, self.sid, self.root, self.book, pump)
        host = self.host_os
        host.ctty = not a.box_tty
        life = Lifecycle(self.sid, self.argv, self.book, pump, host, loop, control.farewell)
        self.life = control.life = life
        life.restart_policy = a.restart
        if a.restarts:  # carried from a supervisor that was lost: `status` names its cause
            life.restarts = a.restarts
            self.book.update(restarts=a.restarts, last_cause=a.last_cause)
        life.final_exit = a.final_exit
        life.end_note = a.end_note
        loop.add_signal_handler(signal.SIGCHLD, life.reap)
        loop.add_signal_handler(signal.SIGTERM, lambda: self.on_signal("SIGTERM"))
        loop.add_signal_handler(signal.SIGINT, lambda: self.on_signal("SIGINT"))
        loop.add_signal_handler(signal.SIGHUP, lambda: None)
        if self.subreaper:
            set_subreaper()
        if self.door is not None:  # bound here, past the keeper's fork: this process's alone
            self.door.arm(loop)
        child = life.start()
        if not isinstance(child, Child):
            self.ready(f"err {child}")
            return 1
        try:
            control.bind()
        except (OSError, SessionError) as e:
            reason = f"cannot bind the control socket: {e}"
            await life.abort_start(child, reason)
            self.ready(f"err {reason}")
            return 1
        self.ready(f"ok {os.getpid()}")
        self.arm_timers(loop, life)
        await life.done.wait()
        control.close_server()
        control.unlink_socket()
        for req in list(control.requests):
            req.cancel()
        return 0

    def run(self) -> int:
        if not self.argv:
            self.ready("err no command given")
            return 2
        try:
            check_id(self.sid)
        except SessionError as e:
            self.ready(f"err {e}")
            return 2
        if self.lock_fd < 0 and not self.take_lock():  # a keeper took it for both of us
            self.ready(f"err session `{self.sid}` is already running")
            return 1
        self.locked = True
        log_fd = -1
        loop = Loop()
        try:
            group = self.host_os.group  # the lock is ours: what a dead run left is a leftover
            if group is not None and group.existed and group.pids():
                group.kill()
            self.write_meta()
            self.book.save()
            self.log_dir = logfiles.prepare(self.sdir)
            log_fd = logfiles.open_log(self.log_dir)
            task = loop.task(self.main(loop, log_fd))
            loop.run_until(task)
            return int(task.result())
        except BaseException as e:
            log_failure("supervisor crashed")
            if self.book.live:
                self.book.change_state(
                    SessionState.EXITED, child_pid=None, error=f"supervisor crashed: {e}"
                )
            self.ready(f"err supervisor crashed: {e}")
            if self.life is not None:
                self.life.kill_now()
            return 1
        finally:
            if self.sock_watch is not None:  # no SIGIO once the loop's handler is gone
                self.sock_watch.unwatch()
            loop.close()
            if self.control is not None:
                self.control.close_server()
                self.control.unlink_socket()
            if self.pump is not None:
                self.pump.close_log()  # it may have closed it already (a failed write)
            elif log_fd >= 0:
                os.close(log_fd)
            if self.locked and self.host_os.group is not None:  # else a live session's group
                self.host_os.group.remove()
            if self.lock_fd >= 0:
                os.close(self.lock_fd)  # releases the lock: the session now reads as over


def detach_stdio() -> None:
    fd = os.open(os.devnull, os.O_RDWR)
    for target in (0, 1):
        with contextlib.suppress(OSError):
            os.dup2(fd, target)
    if fd > 2:
        os.close(fd)


def main(argv: list[str] | None = None) -> int:
    sup = prepare(sys.argv[1:] if argv is None else argv, dict(os.environ))
    if not give_door(sup):  # no host, so no host's door: its worker knocks on ours
        return 1
    # Named before the detaching fork, so it is never an orphan without it: started from a
    # run (the pulse's, a worker's) it is adopted by that run's supervisor, whose sweep
    # spares looop's own by name (a host-forked supervisor is named by the host).
    show_role(f"looop: supervisor {sup.sid}", f"looop:{sup.sid}")
    if not detach(sup.ready_fd):
        return 1
    return start(sup)


def give_door(sup: Supervisor) -> bool:
    """A supervisor started as its own interpreter opens its worker's door, its name put in
    the worker's env as LOOOP_DOOR (none when the env is no worker's of this session, or has
    a door already: a sandboxed worker's box has its own); False, said on its ready line,
    when it cannot."""
    env = sup.host_os.env
    if not sup.sid or env.get("LOOOP_SESSION_ID") != sup.sid or env.get("LOOOP_DOOR"):
        return True
    looop = (sys.executable, "-m", "looop")
    try:
        address = anchor(runtime_base(env), f"door-{os.urandom(8).hex()}")
        sup.door = SoleDoor(address, (sup.root, home_env(env), looop), time.time, sup.sid)
    except OSError as e:
        sup.ready(f"err cannot open the worker's door: {e}")
        return False
    env["LOOOP_DOOR"] = sup.door.named()
    return True


def prepare(argv: list[str], env: dict[str, str]) -> Supervisor:
    """The session's supervisor, not yet running. `env` is its child's environment. The
    session host calls this before it forks, so what it builds is shared, not copied —
    its cgroup too: made here, a supervisor writes no pages of its own for it."""
    sup = Supervisor(Args(argv), env)
    if sup.sid and sup.root:  # the data dir in the name: ids repeat across data dirs
        name = f"{fnv1a_64(os.path.abspath(sup.root).encode())}-{sup.sid}"
        a = sup.args
        sup.contain = sup.host_os.contain(name, a.max_pids, a.max_memory)
    return sup


def detach(ready_fd: int | None) -> bool:
    """Double fork: the spawner waits for this intermediate, which exits at once; the
    supervisor (its child, the one this returns True in) is adopted by init and is never a
    session leader. False (said on `ready_fd`) when it cannot fork."""
    with contextlib.suppress(OSError):
        os.setsid()
    try:
        pid = os.fork()
    except OSError as e:
        say(ready_fd, f"err cannot fork: {e.strerror}")
        return False
    if pid > 0:
        os._exit(0)
    return True


def start(sup: Supervisor) -> int:
    """In the detached supervisor: run the session — under a keeper where no cgroup
    contains its runs (`keep`)."""
    detach_stdio()
    if sup.contain == "sweep" and sup.subreaper:
        code = keep(sup)
        if code is not None:  # the keeper's: its supervisor and all it left are gone
            return code
    return sup.run()


SWEEP_S = 10.0  # at most this long ending what the supervisor left (a process in D state)
PAUSE_S = 0.01


def keep(sup: Supervisor) -> int | None:
    """Become the session's keeper and fork its supervisor: None in the supervisor (it goes
    on to run the session, its lock already held), the keeper's exit code in the keeper.
    None without a fork when the lock is not ours (the supervisor then says so) or no fork
    can be made (the supervisor runs without a keeper)."""
    if not sup.argv or not valid_id(sup.sid) or not sup.take_lock():
        return None
    set_subreaper()  # before the fork: the supervisor's orphans must find us, never init
    try:
        pid = os.fork()
    except OSError:
        return None
    if pid == 0:
        return None
    if sup.ready_fd is not None:  # the supervisor says ready; the starter must see its EOF
        os.close(sup.ready_fd)
    show_role(f"looop: keeper {sup.sid}", "looop-keep")
    for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM):  # the supervisor's to act on
        signal.signal(sig, signal.SIG_IGN)
    _wait_for(pid)
    end_orphans(time.monotonic() + SWEEP_S)
    return 0


def _wait_for(pid: int) -> None:
    """Reap children until the supervisor is among them (the only child until it dies)."""
    while True:
        try:
            got, _ = os.waitpid(-1, 0)
        except ChildProcessError:
            return
        except InterruptedError:
            continue
        if got == pid:
            return


def end_orphans(deadline: float) -> None:
    """Kill every child of this process but looop's own, with all below it, until none is
    left (the orphans of a child killed come back to this subreaper) or the deadline."""
    while True:
        while HostOS.reap_one() is not None:
            pass
        left = [p for p in children() if alive_not_looop(p)]
        if not left or time.monotonic() >= deadline:
            return
        for p in left:
            signal_tree(p, signal.SIGKILL)
        time.sleep(PAUSE_S)


if __name__ == "__main__":
    sys.exit(main())
