"""Real SSH hosts for looop's SSH backend: network namespaces, each with Debian's sshd.

Each host is a network namespace of our own (`ip netns add`), joined to the root namespace by
a veth pair with a private 10.231.N.0/24 network and no other route (nothing leaves the
machine), running `sshd -D` on a high port with its own host key and config, for a unix user
of its own (looopt1..3), so a "remote" worker's files are really not the home's. The client
side is a throwaway key, known_hosts and ssh config handed to looop through
LOOOP_SSH_CONFIG (ssh -F). Everything is torn down even when a test fails. Without root, apt,
`ip netns` or sshd the whole directory is skipped, loudly, with the reason.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOOOP = ROOT / ".venv" / "bin" / "looop"
PORT = 2222
USERS = ("looopt1", "looopt2", "looopt3")


@dataclass
class Host:
    name: str
    user: str
    ns: str
    veth: str  # the root side of its link: down = the host is cut off
    addr: str
    home: Path
    sshd: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"ssh://{self.user}@{self.addr}:{PORT}"

    def cut(self) -> None:
        _run("ip", "link", "set", self.veth, "down")

    def restore(self) -> None:
        _run("ip", "link", "set", self.veth, "up")


@dataclass
class Lab:
    dir: Path
    ssh_config: Path
    hosts: list[Host]


def _run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=60).stdout


def _why_not() -> str | None:
    if sys.platform != "linux":
        return "SSH host tests need Linux network namespaces"
    if os.geteuid() != 0:
        return "SSH host tests need root (ip netns, useradd, sshd on a namespace)"
    if shutil.which("ip") is None:
        return "SSH host tests need iproute2's `ip`"
    if not os.path.exists("/usr/sbin/sshd") or shutil.which("ssh") is None:
        if shutil.which("apt-get") is None:
            return "SSH host tests need openssh-server and there is no apt-get to install it"
        done = subprocess.run(
            ["apt-get", "install", "-y", "-q", "openssh-server", "openssh-client"],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        if done.returncode != 0 or not os.path.exists("/usr/sbin/sshd"):
            return f"cannot install openssh-server: {done.stderr.strip()[-300:]}"
    probe = f"looopprobe{secrets.token_hex(2)}"
    try:
        _run("ip", "netns", "add", probe)
    except (subprocess.CalledProcessError, OSError) as e:
        return f"SSH host tests need `ip netns add` (network namespaces): {e}"
    _run("ip", "netns", "del", probe)
    if not LOOOP.exists():
        return f"SSH host tests run the installed looop: {LOOOP} is missing (`make lint`)"
    return None


def _user(name: str) -> Path:
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        _run("useradd", "-m", "-s", "/bin/bash", name)
        pw = pwd.getpwnam(name)
    # a locked password ("!") makes sshd refuse even a key without PAM; "*" only bars passwords
    _run("usermod", "-p", "*", name)
    return Path(pw.pw_dir)


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


def _kill_user_procs(user: str) -> None:
    """Processes of our own test users only (their sessions outlive an ssh connection)."""
    out = subprocess.run(["ps", "-u", user, "-o", "pid="], capture_output=True, text=True)
    for pid in out.stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


@pytest.fixture(scope="package")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    why = _why_not()
    if why is not None:
        sys.stderr.write(f"\nSKIPPING tests/hosts: {why}\n")
        pytest.skip(why)
    d = tmp_path_factory.mktemp("lab")
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege-separation dir
    key = d / "id_ed25519"
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "looop-test", "-f", str(key))
    pub = (d / "id_ed25519.pub").read_text()
    tag = secrets.token_hex(2)
    hosts: list[Host] = []
    namespaces: list[str] = []
    known: list[str] = []
    try:
        for i, user in enumerate(USERS, start=1):
            home = _user(user)
            _kill_user_procs(user)
            for leftover in (".local/share/looop", ".local/state/looop"):
                shutil.rmtree(home / leftover, ignore_errors=True)
            ssh_dir = home / ".ssh"
            ssh_dir.mkdir(mode=0o700, exist_ok=True)
            (ssh_dir / "authorized_keys").write_text(pub)
            _run("chown", "-R", f"{user}:{user}", str(ssh_dir))
            os.chmod(ssh_dir / "authorized_keys", 0o600)

            ns, veth, peer = f"looop-{tag}-h{i}", f"lp{tag}h{i}", f"lq{tag}h{i}"
            addr = f"10.231.{i}.2"
            _run("ip", "netns", "add", ns)
            namespaces.append(ns)
            _run("ip", "link", "add", veth, "type", "veth", "peer", "name", peer)
            _run("ip", "link", "set", peer, "netns", ns)
            _run("ip", "addr", "add", f"10.231.{i}.1/24", "dev", veth)
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
            proc = subprocess.Popen(
                ["ip", "netns", "exec", ns, "/usr/sbin/sshd", "-D", "-e", "-f", str(conf)],
                stdout=log,
                stderr=log,
            )
            hosts.append(Host(f"h{i}", user, ns, veth, addr, home, proc))
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
        yield Lab(d, cfg, hosts)
    finally:
        for h in hosts:
            _kill_user_procs(h.user)
            h.sshd.terminate()
            try:
                h.sshd.wait(5)
            except subprocess.TimeoutExpired:
                h.sshd.kill()
        for ns in namespaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def no_route_out(ns: str) -> bool:
    """True when a namespace cannot reach anything but its own link (no default route)."""
    routes = _run("ip", "netns", "exec", ns, "ip", "-4", "route")
    return "default" not in routes and all("10.231." in r for r in routes.splitlines() if r)


@dataclass
class Home:
    data: Path
    lab: Lab


@pytest.fixture(scope="package")
def home(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    """A home data dir with the lab's three hosts registered and looop installed on each
    (the first install builds and fetches the wheels; the other two reuse them, at once)."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.hosts.util import looop

    data = tmp_path_factory.mktemp("home") / "data"
    for h in lab.hosts:
        add = looop(data, "host", "add", h.name, h.url, "--ssh-config", str(lab.ssh_config))
        assert add.returncode == 0, add.stderr
    first = looop(data, "host", "install", "h1", timeout=300)
    assert first.returncode == 0, first.stderr
    with ThreadPoolExecutor(2) as pool:
        rest = list(
            pool.map(lambda n: looop(data, "host", "install", n, timeout=300), ["h2", "h3"])
        )
    assert all(r.returncode == 0 for r in rest), [r.stderr for r in rest]
    yield Home(data, lab)
    looop(data, "down", timeout=60)
    for h in lab.hosts:
        looop(data, "host", "rm", h.name, "--force", timeout=30)
