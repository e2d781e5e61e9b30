"""A lab of real SSH hosts: network namespaces, each with Debian's sshd and a user of its own.

Each host is a network namespace of our own (`ip netns add`), joined to the root namespace by
a veth pair with a private NET.N.0/24 network and no other route (nothing leaves the
machine), running `sshd -D` on a high port with its own host key and config, for a unix user
of its own (PREFIX1..N), so a "remote" worker's files are really not the home's. The client
side is a throwaway key, known_hosts and ssh config (hand it to looop with `--ssh-config`).
Everything is torn down when the `lab()` context ends, even on an error.

Shared by tests/hosts/ (conftest: users looopt1..3 on 10.231) and bench/bench_hosts.py (its
own users and subnet), so two labs on one machine never meet: pytest is not needed here.

Test runs side by side (two worktrees, two chains of one run) each hold a slot of their own
(`claim_slot`: a lock file held while the lab lives, so a run killed by SIGKILL frees it):
a slot names its users, namespace tag and addresses, and only its holder wipes or clears them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PORT = 2222
NET = "10.231"
PREFIX = "looopt"
SLOTS_DIR = Path("/run/looop-lab")  # machine-wide: every run on this machine sees the same locks
SLOTS = 16  # labs at once on one machine (each slot: 4 hosts, 4 third octets)
SLOT_HOSTS = 4
NET_RE = re.compile(r"(25[0-5]|2[0-4]\d|1?\d?\d)\.(25[0-5]|2[0-4]\d|1?\d?\d)")
PREFIX_RE = re.compile(r"[a-z][a-z0-9]{1,20}")
TAG_RE = re.compile(r"[a-z][a-z0-9]{0,7}")


@dataclass
class Host:
    name: str
    user: str
    ns: str
    veth: str  # the root side of its link: down = the host is cut off
    addr: str
    home: Path
    sshd: subprocess.Popen[bytes]
    net: str  # the lab's first two octets: this host's routes stay inside NET.*

    @property
    def url(self) -> str:
        return f"ssh://{self.user}@{self.addr}:{PORT}"

    def cut(self) -> None:
        _run("ip", "link", "set", self.veth, "down")

    def restore(self) -> None:
        _run("ip", "link", "set", self.veth, "up")

    def no_route_out(self) -> bool:
        """True when its namespace cannot reach anything but its own link (no default
        route, every route inside the lab's network)."""
        routes = _run("ip", "netns", "exec", self.ns, "ip", "-4", "route")
        return "default" not in routes and all(
            r.startswith(f"{self.net}.") for r in routes.splitlines() if r
        )


@dataclass
class Lab:
    dir: Path
    ssh_config: Path
    hosts: list[Host]
    key: Path  # the client's private key (ssh -i), trusted by every host's user


def _run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=60).stdout


def why_not(install: bool) -> str | None:
    """Why no lab can be built here (None: it can). `install`: apt-get openssh-server when it
    is missing, else say so."""
    if sys.platform != "linux":
        return "the SSH lab needs Linux network namespaces"
    if os.geteuid() != 0:
        return "the SSH lab needs root (ip netns, useradd, sshd on a namespace)"
    if shutil.which("ip") is None:
        return "the SSH lab needs iproute2's `ip`"
    if not os.path.exists("/usr/sbin/sshd") or shutil.which("ssh") is None:
        if not install:
            return "the SSH lab needs openssh-server and openssh-client (/usr/sbin/sshd, ssh)"
        from tests.realcli.install import InstallError, apt_install

        try:
            apt_install(
                ["openssh-server", "openssh-client"],
                300,
                lambda: not os.path.exists("/usr/sbin/sshd") or shutil.which("ssh") is None,
            )
        except InstallError as e:
            return f"cannot install openssh-server for the SSH lab: {e}"
        if not os.path.exists("/usr/sbin/sshd"):
            return "openssh-server installed but /usr/sbin/sshd is not there"
    probe = f"looopprobe{secrets.token_hex(2)}"
    try:
        _run("ip", "netns", "add", probe)
    except (subprocess.CalledProcessError, OSError) as e:
        return f"the SSH lab needs `ip netns add` (network namespaces): {e}"
    _run("ip", "netns", "del", probe)
    return None


def check_params(net: str, prefix: str, tag: str, n: int, base: int = 0) -> None:
    """One line naming the bad parameter (they come from the environment or a caller); n is
    the highest host number, base the third octet its hosts' start after."""
    if not NET_RE.fullmatch(net):
        raise ValueError(f"bad lab network {net!r}: two octets, like 10.232")
    if not PREFIX_RE.fullmatch(prefix):
        raise ValueError(f"bad lab user prefix {prefix!r}: 2-21 of a-z0-9, a letter first")
    if not TAG_RE.fullmatch(tag):
        raise ValueError(f"bad lab namespace tag {tag!r}: 1-8 of a-z0-9, a letter first")
    if not 1 <= n <= 254:
        raise ValueError(f"bad lab size {n}: 1 to 254 hosts")
    if not 0 <= base <= 254 - n:
        raise ValueError(f"bad lab base {base}: its hosts' third octets must stay within 1..254")


@dataclass(frozen=True)
class Slot:
    """One lab's place on the machine: users PREFIX<suffix>1..4, namespace tags
    <kind><suffix>, hosts on the third octets base+1..base+4. Slot 0 is the classic lab
    (looopt1..3 on 10.231.1-4); slot k > 0 takes the letter k ('b', 'c', ...) and octets 4k+."""

    number: int
    held: int = -1  # the lock's file descriptor; -1: not held (a place computed, not claimed)

    @property
    def suffix(self) -> str:
        return "" if self.number == 0 else chr(ord("a") + self.number)

    @property
    def base(self) -> int:
        return SLOT_HOSTS * self.number

    def users(self, prefix: str) -> str:
        return f"{prefix}{self.suffix}"

    def tag(self, kind: str = "looop") -> str:
        return f"{kind}{self.suffix}"


def claim_slot(locks: Path = SLOTS_DIR, slots: int = SLOTS) -> Slot:
    """The first slot no live lab holds, held until `release_slot` (or this process's end:
    the kernel drops a dead holder's lock, so a killed run never keeps its slot). The holder
    alone may wipe the slot's users and clear its stale namespaces."""
    locks.mkdir(mode=0o700, parents=True, exist_ok=True)
    for k in range(slots):
        fd = os.open(locks / f"slot-{k}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return Slot(k, fd)
    raise RuntimeError(f"every SSH lab slot ({slots} in {locks}) is held: too many labs at once")


def release_slot(slot: Slot) -> None:
    if slot.held >= 0:
        os.close(slot.held)  # closing the only descriptor drops the lock


@contextmanager
def _users_locked() -> Iterator[None]:
    """useradd/userdel of labs side by side, one at a time (each rewrites /etc/passwd and
    refuses while another holds it)."""
    SLOTS_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    with (SLOTS_DIR / "users.lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        yield


def _user(name: str) -> Path:
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        with _users_locked():
            _run("useradd", "-m", "-s", "/bin/bash", name)
        pw = pwd.getpwnam(name)
    # a locked password ("!") makes sshd refuse even a key without PAM; "*" only bars passwords
    with _users_locked():
        _run("usermod", "-p", "*", name)
    return Path(pw.pw_dir)


def _drop_user(name: str) -> None:
    """A lab's user gone with its home (~100 MB of looop's venv each) once the lab ends: its
    processes were killed just before; -f removes it even if one is still exiting."""
    with _users_locked():
        subprocess.run(["userdel", "-r", "-f", name], capture_output=True, timeout=60)


PIP_NO_COMPILE = (
    "[install]\n# pip skips byte-compiling what it installs (`--compile` off)\ncompile = false\n"
)


def pip_config(home: Path, user: str, compile_: bool) -> None:
    """The user's own pip config (~/.config/pip/pip.conf), as that host's owner set it.

    Without compiling, `host install` is the same install (the same wheels, venv, files and
    `looop version` run there) at about half its CPU (~5.5 of ~10.7 s a host, measured with
    looop's wheels): Python compiles a module when a process first imports it, into the
    user's own venv, so only what looop runs there is ever compiled. Written or removed on
    every lab build: a user outlives a lab."""
    conf = home / ".config" / "pip" / "pip.conf"
    if compile_:
        conf.unlink(missing_ok=True)
        return
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(PIP_NO_COMPILE)
    _run("chown", "-R", f"{user}:{user}", str(home / ".config"))


def _wait_port(ns: str, addr: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        done = subprocess.run(
            ["ip", "netns", "exec", ns, "ss", "-Hltn", f"sport = :{PORT}"],
            capture_output=True,
            text=True,
        )
        if addr in done.stdout:
            return
        time.sleep(0.05)
    raise RuntimeError(f"sshd in {ns} did not listen on {addr}:{PORT}")


def kill_user_procs(user: str) -> None:
    """Processes of our own lab users only (their sessions outlive an ssh connection)."""
    out = subprocess.run(["ps", "-u", user, "-o", "pid="], capture_output=True, text=True)
    for pid in out.stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def _space(tag: str, net: str) -> str:
    """The first part of a lab's namespace names: its tag and its subnet (10.233: 10-233)."""
    return f"{tag}-{net.replace('.', '-')}"


def clear_stale(net: str, tag: str, i: int, octet: int | None = None) -> None:
    """What a lab killed mid-run (SIGKILL, a timeout) left on host i's place: its namespace
    with the sshd in it, and the root end of its veth holding NET.<octet>.1 (octet: i unless
    given), which would otherwise
    make every later lab on this subnet unreachable. Two live labs never share a subnet, and
    a lab's namespaces carry its subnet in their names, so a lab on another subnet (another
    run's, at the same time) is never taken for stale."""
    name = re.compile(rf"{re.escape(_space(tag, net))}-[0-9a-f]{{4}}-h{i}")
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for ns in (line.split()[0] for line in listed.splitlines() if line.strip()):
        if name.fullmatch(ns):
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
            for pid in pids.stdout.split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    addrs = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True)
    for line in addrs.stdout.splitlines():
        words = line.split()
        if len(words) > 3 and words[3] == f"{net}.{i if octet is None else octet}.1/24":
            subprocess.run(["ip", "link", "del", words[1].split("@")[0]], capture_output=True)


@contextmanager
def lab(
    d: Path,
    n: int = 3,
    net: str = NET,
    prefix: str = PREFIX,
    tag: str = "looop",
    first: int = 1,
    hide: tuple[str, ...] = (),
    base: int = 0,
    pip_compile: bool = True,
    drop_users: bool = False,
) -> Iterator[Lab]:
    """N hosts h<first>.. at NET.<base+i>.2, users PREFIXi, namespaces TAG-NET-<random>-hi,
    files in `d`. Two labs beside each other on one subnet take their own `base`, users and
    tag (the tag names their namespaces: a lab clears only its own tag's stale ones). The
    users' earlier looop files are wiped first: each lab starts as a fresh machine.
    `hide`: folders each host sees empty (a tmpfs over them in its sshd's own mount
    namespace), as on a machine where that software was never installed.
    `pip_compile`: False gives each user a pip config that skips byte-compiling at install
    (see `pip_config`). `drop_users`: the users are deleted with their homes at the end."""
    check_params(net, prefix, tag, n + first - 1, base)
    if any(not h.startswith("/") or not os.path.isdir(h) for h in hide):
        raise ValueError(f"bad lab hide {hide!r}: existing absolute folders")
    d.mkdir(parents=True, exist_ok=True)
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege-separation dir
    key = d / "id_ed25519"
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "looop-lab", "-f", str(key))
    pub = (d / "id_ed25519.pub").read_text()
    rnd = secrets.token_hex(2)
    hosts: list[Host] = []
    namespaces: list[str] = []
    known: list[str] = []
    try:
        for i in range(first, first + n):
            user = f"{prefix}{i}"
            home = _user(user)
            kill_user_procs(user)
            for leftover in (".local/share/looop", ".local/state/looop"):
                shutil.rmtree(home / leftover, ignore_errors=True)
            pip_config(home, user, pip_compile)
            ssh_dir = home / ".ssh"
            ssh_dir.mkdir(mode=0o700, exist_ok=True)
            (ssh_dir / "authorized_keys").write_text(pub)
            _run("chown", "-R", f"{user}:{user}", str(ssh_dir))
            os.chmod(ssh_dir / "authorized_keys", 0o600)

            clear_stale(net, tag, i, base + i)
            # interface names stay under 16 bytes: 2 + 4 + 1 + up to 3
            ns, veth, peer = f"{_space(tag, net)}-{rnd}-h{i}", f"lp{rnd}h{i}", f"lq{rnd}h{i}"
            addr = f"{net}.{base + i}.2"
            _run("ip", "netns", "add", ns)
            namespaces.append(ns)
            _run("ip", "link", "add", veth, "type", "veth", "peer", "name", peer)
            _run("ip", "link", "set", peer, "netns", ns)
            _run("ip", "addr", "add", f"{net}.{base + i}.1/24", "dev", veth)
            _run("ip", "link", "set", veth, "up")
            _run("ip", "netns", "exec", ns, "ip", "addr", "add", f"{addr}/24", "dev", peer)
            _run("ip", "netns", "exec", ns, "ip", "link", "set", peer, "up")
            _run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")

            hkey = d / f"host{i}_key"
            _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(hkey))
            known.append(f"[{addr}]:{PORT} {(d / f'host{i}_key.pub').read_text().strip()}")
            conf = d / f"sshd{i}.conf"
            conf.write_text(
                f"Port {PORT}\nListenAddress {addr}\nHostKey {hkey}\nPidFile none\n"
                "UsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                f"PermitRootLogin no\nAllowUsers {user}\n"
                "AuthorizedKeysFile .ssh/authorized_keys\n"
                "ClientAliveInterval 2\nClientAliveCountMax 3\n"
                "AllowStreamLocalForwarding yes\nStreamLocalBindUnlink yes\n"
                "MaxSessions 100\nMaxStartups 100\nLogLevel ERROR\n"
            )
            log = (d / f"sshd{i}.log").open("wb")
            sshd = ["/usr/sbin/sshd", "-D", "-e", "-f", str(conf)]
            if hide:  # `ip netns exec` gives sshd a mount namespace of its own (slave)
                mounts = "".join(
                    f"mount -t tmpfs -o size=1m,mode=755 looophide {shlex.quote(h)} && "
                    for h in hide
                )
                sshd = ["sh", "-c", f"{mounts}exec {shlex.join(sshd)}"]
            proc = subprocess.Popen(
                ["ip", "netns", "exec", ns, *sshd],
                stdout=log,
                stderr=log,
            )
            log.close()  # sshd holds its own copy
            hosts.append(Host(f"h{i}", user, ns, veth, addr, home, proc, net))
        for h in hosts:
            _wait_port(h.ns, h.addr, time.monotonic() + 10)
        (d / "known_hosts").write_text("\n".join(known) + "\n")
        cfg = d / "ssh_config"
        cfg.write_text(
            "Host *\n"
            f"  IdentityFile {key}\n  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {d / 'known_hosts'}\n  GlobalKnownHostsFile /dev/null\n"
            "  StrictHostKeyChecking yes\n"
        )
        yield Lab(d, cfg, hosts, key)
    finally:
        for h in hosts:
            kill_user_procs(h.user)
            h.sshd.terminate()
            try:
                h.sshd.wait(5)
            except subprocess.TimeoutExpired:
                h.sshd.kill()
                h.sshd.wait(5)
        for ns in namespaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        if drop_users:
            for h in hosts:
                _drop_user(h.user)
