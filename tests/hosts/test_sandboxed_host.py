"""A sandboxed worker on an SSH host: srt and bubblewrap run THERE, as the host's user, with the
same policy as at home — the probes of tests/sandbox/test_sandboxed_worker.py (writes outside
its folders, planted secrets under the host user's home, the satellite's own files, another
home's satellite, escapes by symlink, /proc and hard link, a server that is not allowlisted)
run on a lab host — while the contract verbs still reach home through the host's bridge.

A host without srt (a lab host whose sshd sees srt's npm folder empty) is reported by `host
check`, refused at `worker start` in one line naming the fix, and fixed by `host install`.
A worker on a host with a resume template is resumed there on its conversation."""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from looop.home.paths import Paths
from looop.remote.ssh.boxed import SRT_DIR
from looop.remote.ssh.install import srt_package
from tests.hosts.conftest import LAB_NET, Home, Host, Lab, Place, run_srt
from tests.hosts.lab import lab as build_lab
from tests.hosts.util import looop
from tests.sandbox.test_sandboxed_worker import PROBES

pytestmark = pytest.mark.hosts

SECRET = "SECRET-KEY-MATERIAL-host-7c1e"


class Server:
    """An HTTP server in the root namespace (a host reaches it on its link's home side)."""

    def __init__(self, body: str) -> None:
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("0.0.0.0", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _own(host: Host, path: Path, text: str, mode: int = 0o644) -> None:
    """A file of the host user's own, written as root would plant it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    pw = pwd.getpwnam(host.user)
    for p in (path, path.parent):
        os.chown(p, pw.pw_uid, pw.pw_gid)
    os.chmod(path, mode)


def _config(data: Path, sandbox: object, runners: dict[str, object] | None = None) -> None:
    rs = runners or {"sh": {"worker": "bash {{prompt_file}}"}}
    data.mkdir(parents=True, exist_ok=True)
    config = {"default": next(iter(rs)), "runners": rs, "sandbox": sandbox}
    (data / "config.json").write_text(json.dumps(config))


def _second_home(tmp: Path, lab: Lab, hosts: list[Host], sandbox: object, **kw: object) -> Path:
    """A home of its own (its config says the sandbox) using the lab's installed hosts."""
    data = tmp / "data"
    _config(data, sandbox, kw.get("runners"))  # type: ignore[arg-type]
    for h in hosts:
        add = looop(data, "host", "add", h.name, h.url, "--ssh-config", str(lab.ssh_config))
        assert add.returncode == 0, add.stderr
    return data


def _satellite(data: Path, name: str) -> Path:
    got = looop(data, "host", "check", name, "--json")
    return Path(json.loads(got.stdout)["dir"])


def _wait_gone(data: Path, wid: str) -> None:
    w = looop(data, "wait", wid, "--timeout", "60s")
    assert w.returncode == 0, looop(data, "log", wid).stdout


def _results(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        k, _, v = line.partition("=")
        out[k] = v
    return out


# The home sandbox suite's own probes (tests/sandbox/test_sandboxed_worker.py) run as they
# are on the host, then what only a host has: its login's keys, the relay socket, another
# home's satellite, the venv looop runs from; an ask; the network seen from the host.
HOST_PROBES = r"""
t keys_read grep -q looop-lab "$HOME/.ssh/authorized_keys"
t relay_seen test -e "$D/relay.sock"
t other_log_dir_read grep -rq other-secret-output "$D/sessions/other/log"
t other_home_read grep -rq SECRET "$HOME/.local/share/looop/satellite/0123456789abcdef"
t venv_write sh -c 'echo pwned >> "$HOME/.local/share/looop/venv/pyvenv.cfg"'
a=$("$LOOOP_BIN" ask --prompt "ship?" --options yes,no); echo "answer=$a" >> "$r"
c() { k=$1; shift; out=$(curl -s -m 10 "$@" 2>/dev/null); echo "$k=${out:-none}" >> "$r"; }
c net_allowed "http://$HOME_ADDR:$OK/"
c net_denied "http://$HOME_ADDR:$NO/"
c net_direct --noproxy '*' "http://$HOME_ADDR:$NO/"
c net_world "http://example.com/"
echo end= >> "$r"
"""


@pytest.fixture
def servers() -> Iterator[tuple[Server, Server]]:
    allowed, denied = Server("allowed-ok"), Server("denied-reached")
    yield allowed, denied
    allowed.close()
    denied.close()


@pytest.mark.timeout(240)
def test_a_sandboxed_worker_on_a_host_holds_every_wall_and_calls_home(
    home: Home, tmp_path: Path, servers: tuple[Server, Server]
) -> None:
    allowed, denied = servers
    h1 = home.lab.hosts[0]
    home_addr = h1.addr.rsplit(".", 1)[0] + ".1"  # the home's side of h1's link
    policy = {"domains": [f"{home_addr}:{allowed.port}"]}
    runners = {"claude": {"worker": "claude {{prompt_file}}"}}  # its state: ~/.claude
    data = _second_home(tmp_path, home.lab, [h1], policy, runners=runners)
    sat = _satellite(data, "h1")
    # what the home suite plants at home, planted on the host: secrets under the login's
    # home, the CLI's settings, and the data dir's (here: the satellite's) own files
    _own(h1, h1.home / ".ssh" / "id_ed25519", SECRET + "\n", 0o600)
    _own(h1, h1.home / ".aws" / "credentials", SECRET + "\n", 0o600)
    _own(h1, h1.home / "outside.txt", "untouched\n")
    _own(h1, h1.home / ".claude" / "settings.json", "{}\n")
    _own(h1, sat / "config.json", json.dumps({"notification": f"echo {SECRET}"}))
    _own(h1, sat / "journal.md", "journal\n")
    _own(h1, sat / "PLAYBOOK.md", "playbook\n")
    # another home's satellite on the same login, with a secret in it
    other_sat = h1.home / ".local/share/looop/satellite/0123456789abcdef"
    _own(h1, other_sat / "config.json", SECRET + "\n")
    head = f"HOME_ADDR={home_addr}\nOK={allowed.port}\nNO={denied.port}\n"
    _own(h1, h1.home / "probe.sh", head + PROBES + HOST_PROBES)
    try:
        # an unsandboxed worker of the same satellite, whose files the sandboxed one goes after
        other = looop(
            data, "worker", "start", "other", "x", "--host", "h1", "--no-sandbox",
            "--command", "bash -c 'echo other-secret-output; exec sleep 600' # {{prompt_file}}",
        )  # fmt: skip
        assert other.returncode == 0, other.stderr
        start = looop(
            data,
            "worker",
            "start",
            "w1",
            "x",
            "--host",
            "h1",
            "--command",
            "bash $HOME/probe.sh # {{prompt_file}}",
        )
        assert start.returncode == 0, start.stderr
        # srt's settings were built there, against the satellite's own data dir
        settings = json.loads((sat / "sandbox" / "w1" / "srt.json").read_text())
        assert str(sat) in settings["filesystem"]["denyRead"]
        assert f"{home_addr}:{allowed.port}" in settings["network"]["allowedDomains"]
        # its ask reaches home through the bridge; answered here, the answer goes back
        deadline = time.monotonic() + 60
        asks: list[dict[str, object]] = []
        while not asks:
            assert time.monotonic() < deadline, looop(data, "log", "w1").stdout
            asks = json.loads(looop(data, "asks", "--json").stdout or "[]")
        assert asks[0]["worker"] == "w1"
        # while it waits on the ask: bubblewrap runs there, as the host's user
        ps = subprocess.run(["ps", "-u", h1.user, "-o", "args="], capture_output=True, text=True)
        assert any(a.startswith("bwrap") for a in ps.stdout.splitlines()), ps.stdout
        assert looop(data, "answer", str(asks[0]["id"]), "yes").returncode == 0
        _wait_gone(data, "w1")
        got = _results(Paths.at(sat).rooms / "w1" / "work" / "results")
        assert got.pop("end") == "", got
        # what the contract needs works from inside, and its verbs landed at home
        for key in ("workspace", "tmpdir", "report", "claim", "told", "cost", "runner_state"):
            assert got.pop(key) == "ok", (key, looop(data, "log", "w1").stdout)
        assert got.pop("answer") == "yes"
        assert (Paths.at(sat).rooms / "w1" / "reports" / "w1.md").read_text() == "done\n"
        claim = json.loads((data / "claims" / "build-lock.json").read_text())
        assert claim["session"] == "w1"
        assert "w1" in (data / "cost.jsonl").read_text()
        assert got.pop("flag") == "ok"  # through the host's own door, on its session
        # the data dir is an empty scratch folder inside: these land there, never on disk
        for key in ("config_write", "journal_write", "other_log_write", "other_brief_write"):
            got.pop(key)
        for key in [k for k in got if k.startswith("data_")]:
            got.pop(key)
        forged = subprocess.run(["grep", "-rl", "forged", str(sat)], capture_output=True, text=True)
        assert forged.stdout == "", forged.stdout
        assert not (data / "claims" / "other-lock.json").exists()  # each speaks for itself
        # and nothing else: every wall held, every escape failed
        walls = {k: v for k, v in got.items() if not k.startswith("net_")}
        assert walls == dict.fromkeys(walls, "no"), walls
        assert (h1.home / "outside.txt").read_text() == "untouched\n"
        assert not (h1.home / "new.txt").exists()
        assert (h1.home / ".claude" / "settings.json").read_text() == "{}\n"
        assert SECRET in (sat / "config.json").read_text()
        assert "forged" not in (sat / "journal.md").read_text()
        assert "forged" not in (sat / "PLAYBOOK.md").read_text()
        assert "forged" not in (sat / "prompts" / "other.md").read_text()
        assert not (sat / "answers" / "w1-9.json").exists()
        assert "pwned" not in (h1.home / ".local/share/looop/venv/pyvenv.cfg").read_text()
        # network: the allowlisted server answered once; the other never saw a request
        assert got["net_allowed"] == "allowed-ok"
        assert allowed.hits == 1 and denied.hits == 0
        assert all("denied-reached" not in v for k, v in got.items() if k != "net_allowed")
        rows = {r["id"]: r for r in json.loads(looop(data, "ls", "-a", "--json").stdout)}
        assert rows["w1"]["sandboxed"] is True and rows["other"]["sandboxed"] is False
    finally:
        looop(data, "kill", "other")
        looop(data, "host", "rm", "h1", "--force")
        shutil.rmtree(other_sat, ignore_errors=True)


def _hidden_srt() -> tuple[str, ...]:
    """The folder that holds this machine's global srt package, if it has one: hidden from
    the bare host (the run's own srt, which `host install` copies, is in the repo's cache)."""
    pkg = srt_package(shutil.which("srt"))
    return () if pkg is None else (str(pkg[0].parent),)


@pytest.fixture(scope="module")
def bare(home: Home, where: Place, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One more lab host (h4, user PREFIX4, beside the lab's three) whose sshd sees srt's
    npm folder empty."""
    d = tmp_path_factory.mktemp("bare")
    hide = _hidden_srt()
    with build_lab(
        d,
        1,
        LAB_NET,
        where.users,
        where.tag("sbx"),
        first=4,
        hide=hide,
        base=where.base,
        pip_compile=False,  # as the lab's three (tests/hosts/conftest.py)
        drop_users=True,
    ) as b:
        yield b


@pytest.mark.timeout(420)
def test_a_host_without_srt_is_named_refused_and_fixed_by_install(
    home: Home, bare: Lab, tmp_path: Path
) -> None:
    h4 = bare.hosts[0]
    assert h4.name == "h4"
    data = _second_home(tmp_path, bare, [h4], "on")
    (data / "hosts" / ".wheels").mkdir(parents=True)
    for f in (home.data / "hosts" / ".wheels").iterdir():  # this looop's wheels, built once
        shutil.copytree(f, data / "hosts" / ".wheels" / f.name)
    srt = run_srt()
    first = looop(data, "host", "install", "h4", timeout=300, env=srt)
    assert first.returncode == 0, first.stderr
    assert "srt:" in first.stdout and "copied" in first.stdout, first.stdout
    shutil.rmtree(h4.home / SRT_DIR)  # as an install older than this change left it

    check = looop(data, "host", "check", "h4")
    assert check.returncode == 1, check.stdout + check.stderr
    assert "missing srt" in check.stdout and "looop host install h4" in check.stdout
    start = looop(
        data, "worker", "start", "bw1", "x", "--host", "h4", "--command", "true # {{prompt_file}}"
    )
    assert start.returncode != 0
    line = start.stderr.strip()
    assert len(line.splitlines()) == 1, line
    assert "host h4" in line and "looop host install h4" in line and "--no-sandbox" in line
    assert "Traceback" not in line
    # nothing started there, nothing left recorded at home
    assert not (data / "hosts" / "workers" / "bw1.json").exists()
    # unsandboxed, said so, it runs there
    plain = looop(data, "worker", "start", "bw2", "x", "--host", "h4", "--no-sandbox",
                  "--command", "true # {{prompt_file}}")  # fmt: skip
    assert plain.returncode == 0, plain.stderr

    fixed = looop(data, "host", "install", "h4", timeout=300, env=srt)
    assert fixed.returncode == 0, fixed.stderr
    assert re.search(r"srt: \S+ copied from this machine", fixed.stdout), fixed.stdout
    ok = looop(data, "host", "check", "h4")
    assert ok.returncode == 0 and "sandbox: ready" in ok.stdout, ok.stdout + ok.stderr
    _own(h4, h4.home / "outside.txt", "untouched\n")
    w = looop(
        data, "worker", "start", "bw3", "x", "--host", "h4", "--command",
        "bash -c 'echo pwned > $HOME/outside.txt; echo wrote=$?; exec sleep 600' # {{prompt_file}}",
    )  # fmt: skip
    assert w.returncode == 0, w.stderr
    got = looop(data, "expect", "bw3", "wrote=1", "--timeout", "60s")
    assert got.returncode == 0, looop(data, "log", "bw3").stdout
    assert (h4.home / "outside.txt").read_text() == "untouched\n"
    looop(data, "kill", "bw3")
    looop(data, "host", "rm", "h4", "--force")


# A runner whose line is given its conversation id, and whose resume template takes it back
AGENT = "bash -c 'echo \"agent started conv=$0\"; exec cat' {{session_id}} {{prompt_file}}"
RESUME = (
    'bash -c \'echo "agent resumed conv=$0"; "$LOOOP_BIN" claim rs-lock && echo claimed; '
    "exec cat' {{session_id}}"
)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("sandbox", ["off", "on"])
def test_a_worker_on_a_host_resumes_there_on_its_conversation(
    home: Home, tmp_path: Path, sandbox: str
) -> None:
    h2 = home.lab.hosts[1]
    runners = {"agent": {"worker": AGENT, "resume": RESUME}}
    data = _second_home(tmp_path, home.lab, [h2], sandbox, runners=runners)
    try:
        start = looop(data, "worker", "start", "rs1", "carry on", "--host", "h2")
        assert start.returncode == 0, start.stderr
        seen = looop(data, "expect", "rs1", r"agent started conv=\S+", "--timeout", "30s")
        assert seen.returncode == 0, looop(data, "log", "rs1").stdout
        m = re.search(r"agent started conv=(\S+)", looop(data, "log", "rs1").stdout)
        assert m is not None
        conv = m.group(1)
        assert conv != "{{session_id}}"
        back = looop(data, "restart", "rs1")
        assert back.returncode == 0, back.stderr
        assert f"resumed rs1 on conversation {conv}" in back.stdout, back.stdout
        again = looop(data, "expect", "rs1", f"agent resumed conv={conv}", "--timeout", "30s")
        assert again.returncode == 0, looop(data, "log", "rs1").stdout
        rows = {r["id"]: r for r in json.loads(looop(data, "ls", "--json").stdout)}
        assert rows["rs1"]["alive"] and rows["rs1"]["host"] == "h2"
        assert rows["rs1"]["sandboxed"] is (sandbox == "on")
        # still its way home after the resume: its claim is the home's
        claimed = looop(data, "expect", "rs1", "claimed", "--timeout", "60s")
        assert claimed.returncode == 0, looop(data, "log", "rs1").stdout
        lease = json.loads((data / "claims" / "rs-lock.json").read_text())
        assert lease["session"] == "rs1"
    finally:
        looop(data, "kill", "rs1")
        looop(data, "host", "rm", "h2", "--force")


@pytest.mark.timeout(300)
def test_a_sandboxed_workers_verify_on_a_host_runs_inside_its_walls(
    home: Home, tmp_path: Path
) -> None:
    h3 = home.lab.hosts[2]
    data = _second_home(tmp_path, home.lab, [h3], "on")
    _own(h3, h3.home / "verify-outside.txt", "untouched\n")
    check = (
        'echo pwned > "$HOME/verify-outside.txt"; echo "wrote=$?"; '
        'test -f "$LOOOP_WORKSPACE/made" && echo found-made'
    )
    try:
        start = looop(
            data, "worker", "start", "vb1", "x", "--host", "h3",
            "--command", "bash -c 'echo m > \"$LOOOP_WORKSPACE/made\"' # {{prompt_file}}",
            "--verify", check,
        )  # fmt: skip
        assert start.returncode == 0, start.stderr
        assert looop(data, "wait", "vb1", "--timeout", "60s").returncode == 0
        rows = {r["id"]: r for r in json.loads(looop(data, "ls", "-a", "--json").stdout)}
        assert not rows["vb1"]["alive"]
        # the beat's housekeeping asks the host (its decide has no runner here and fails after)
        looop(data, "tick", timeout=240)
        got = json.loads((data / "verify" / "vb1.json").read_text())
        assert got["pass"] is True, got
        assert "found-made" in got["output"] and "wrote=1" in got["output"], got
        assert (h3.home / "verify-outside.txt").read_text() == "untouched\n"
    finally:
        looop(data, "host", "rm", "h3", "--force")
