"""A sandboxed worker with the real srt and bubblewrap: a plain shell script as the worker tries
every wall — writes outside its workspace, a planted ~/.ssh key, looop's config and journal,
another worker's files, a loopback server that is not allowlisted — and the escapes around
them (a symlink out, /proc/self/root, a hard link, IP spellings of a denied host), while the
contract verbs (`ask`, `claim`, `told`, `cost report`, `flag`) still work from inside — through
the box's door, since the box writes nothing of the data dir — each held to its own worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import pytest

from looop.home.clock import SystemClock
from looop.home.paths import Paths
from looop.sessions.client import wait
from tests.helpers import clean_env

pytestmark = pytest.mark.timeout(120)

LOOOP = str(Path(sys.executable).parent / "looop")
SECRET = "SECRET-KEY-MATERIAL-9f3a"


class Server:
    """A loopback HTTP server that counts the requests it was sent."""

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

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def servers() -> Iterator[tuple[Server, Server]]:
    allowed, denied = Server("allowed-ok"), Server("denied-reached")
    yield allowed, denied
    allowed.close()
    denied.close()


class Box:
    """A home with a planted key, a data dir with a config, and looop as a user runs it."""

    def __init__(self, tmp_path: Path, srt: Path, sandbox: object) -> None:
        self.home = tmp_path / "home"
        self.data = tmp_path / "data"
        (self.home / ".ssh").mkdir(parents=True)
        (self.home / ".ssh" / "id_ed25519").write_text(SECRET + "\n")
        (self.home / ".aws").mkdir()
        (self.home / ".aws" / "credentials").write_text(SECRET + "\n")
        (self.home / "outside.txt").write_text("untouched\n")
        (self.home / ".claude").mkdir()
        (self.home / ".claude" / "settings.json").write_text("{}\n")
        self.data.mkdir()
        config = {
            "default": "claude",
            "runners": {"claude": {"worker": "claude {{prompt_file}}"}},
            "sandbox": sandbox,
            "notification": f"echo {SECRET}",
        }
        (self.data / "config.json").write_text(json.dumps(config))
        (self.data / "journal.md").write_text("journal\n")
        (self.data / "PLAYBOOK.md").write_text("playbook\n")
        self.env = clean_env(self.home, self.data, LOOOP_SRT=str(srt))

    def looop(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [LOOOP, *args],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, wid: str, script: str, *flags: str) -> None:
        path = self.home / f"{wid}.sh"
        path.write_text(script)
        done = self.looop(
            "worker", "start", wid, "go", "--command", f"bash {path} # {{{{prompt_file}}}}", *flags
        )
        assert done.returncode == 0, done.stderr

    def wait(self, wid: str) -> int:
        return wait(self.data, wid, 60, SystemClock())

    def room(self, wid: str) -> Path:
        return Paths.at(self.data).rooms / wid

    def results(self, wid: str) -> dict[str, str]:
        """KEY=VALUE lines the script wrote to its workspace."""
        path = self.room(wid) / "work" / "results"
        out: dict[str, str] = {}
        for line in path.read_text().splitlines():
            k, _, v = line.partition("=")
            out[k] = v
        return out


# Each probe prints KEY=ok when the action succeeded, KEY=no when it failed.
PROBES = r"""
r="$LOOOP_WORKSPACE/results"
t() {
  k=$1; shift
  if "$@" >/dev/null 2>&1; then echo "$k=ok" >> "$r"; else echo "$k=no" >> "$r"; fi
}
export D="$LOOOP_DATA_DIR"
t workspace sh -c 'echo mine > "$LOOOP_WORKSPACE/file"'
t tmpdir sh -c 'echo mine > "$TMPDIR/file"'
t report sh -c 'echo done > "$LOOOP_REPORTS_DIR/w1.md"'
t home_write sh -c 'echo pwned > "$HOME/outside.txt"'
t home_new sh -c 'echo pwned > "$HOME/new.txt"'
t tmp_write sh -c 'echo pwned > /tmp/looop-sandbox-escape-$$'
t ssh_read grep -q SECRET "$HOME/.ssh/id_ed25519"
t aws_read grep -q SECRET "$HOME/.aws/credentials"
t config_read grep -q SECRET "$D/config.json"
t config_write sh -c 'echo "{}" > "$D/config.json"'
t journal_read cat "$D/journal.md"
t journal_write sh -c 'echo forged >> "$D/journal.md"'
t playbook_write sh -c 'echo forged >> "$D/PLAYBOOK.md"'
t other_log_read cat "$D/sessions/other/output.log"
t other_log_write sh -c 'echo forged >> "$D/sessions/other/output.log"'
t other_brief_read cat "$D/prompts/other.md"
t other_brief_write sh -c 'echo forged > "$D/prompts/other.md"'
t answer_forge sh -c 'echo "{}" > "$D/answers/w1-9.json"'
ln -s "$HOME/outside.txt" "$LOOOP_WORKSPACE/link-out"
t symlink_write sh -c 'echo pwned > "$LOOOP_WORKSPACE/link-out"'
ln -s "$HOME/.ssh/id_ed25519" "$LOOOP_WORKSPACE/link-key"
t symlink_read grep -q SECRET "$LOOOP_WORKSPACE/link-key"
t procroot_read grep -q SECRET "/proc/self/root$HOME/.ssh/id_ed25519"
t procroot_write sh -c 'echo pwned > "/proc/self/root$HOME/outside.txt"'
t procroot1_write sh -c 'echo pwned > "/proc/1/root$HOME/outside.txt"'
t hardlink_config ln "$D/config.json" "$LOOOP_WORKSPACE/hl-config"
W="$LOOOP_WORKSPACE"
t hardlink_home sh -c 'ln "$HOME/outside.txt" "$0/hl" && echo pwned >> "$0/hl"' "$W"
t runner_state sh -c 'mkdir -p "$HOME/.claude/projects" && echo s > "$HOME/.claude/projects/s"'
t runner_hooks sh -c 'echo "{\"hooks\": 1}" > "$HOME/.claude/settings.json"'
t claim "$LOOOP_BIN" claim build-lock
t told "$LOOOP_BIN" told w1
t cost "$LOOOP_BIN" cost report session w1 claude 0.25
t flag "$LOOOP_BIN" flag w1 needs a key
t claim_other "$LOOOP_BIN" claim other-lock --session other
t flag_other "$LOOOP_BIN" flag other forged
t told_other "$LOOOP_BIN" told other
t kill_other "$LOOOP_BIN" kill other
t data_claims sh -c 'mkdir -p "$D/claims" && echo forged > "$D/claims/forged.json"'
t data_tells sh -c 'mkdir -p "$D/tells/consumed" && echo forged > "$D/tells/consumed/f.json"'
t data_events sh -c 'echo forged >> "$D/events.jsonl"'
t data_cost sh -c 'echo forged >> "$D/cost.jsonl"'
t data_reports sh -c 'mkdir -p "$D/reports" && echo forged > "$D/reports/forged.md"'
t data_lock sh -c 'mkdir -p "$D/claims" && exec 9>"$D/claims/.lock" && flock -n 9'
"""

NET = r"""
c() { k=$1; shift; out=$(curl -s -m 10 "$@" 2>/dev/null); echo "$k=${out:-none}" >> "$r"; }
c net_allowed "http://127.0.0.1:$OK/"
c net_denied "http://127.0.0.1:$NO/"
c net_localhost "http://localhost:$NO/"
c net_decimal "http://2130706433:$NO/"
c net_hex "http://0x7f000001:$NO/"
c net_mapped "http://[::ffff:127.0.0.1]:$NO/"
c net_direct --noproxy '*' "http://127.0.0.1:$NO/"
c net_socks --socks5-hostname "localhost:1080" "http://127.0.0.1:$NO/"
c net_world "http://example.com/"
"""


def _sandbox_procs(data: Path) -> list[str]:
    """Processes whose command line names this test's data dir (srt, bwrap, the script); the
    home's sandbox host, shared by its boxes and idling out on its own, is not one of them."""
    out = []
    for p in psutil.process_iter(["cmdline"]):
        line = " ".join(p.info["cmdline"] or [])
        if line.startswith("looop: sandbox host "):
            continue
        if str(data) in line and p.pid != os.getpid():
            out.append(line[:200])
    return out


def test_a_sandboxed_worker_cannot_cross_any_wall_and_the_contract_still_works(
    tmp_path: Path, srt: Path, servers: tuple[Server, Server]
) -> None:
    allowed, denied = servers
    box = Box(tmp_path, srt, {"domains": [f"127.0.0.1:{allowed.port}"]})
    # another worker, unsandboxed, whose files the sandboxed one goes after
    other = box.looop(
        "worker",
        "start",
        "other",
        "theirs",
        "--command",
        "sleep 600 # {{prompt_file}}",
        "--no-sandbox",
    )
    assert other.returncode == 0, other.stderr
    script = f'OK={allowed.port}\nNO={denied.port}\n{PROBES}{NET}echo end >> "$r"\n'
    box.start("w1", script)
    assert box.wait("w1") == 0, box.looop("log", "w1").stdout
    got = box.results("w1")
    assert got.pop("end") == ""

    # what the contract needs works from inside: its room, and its verbs through the door
    for key in ("workspace", "tmpdir", "report", "claim", "told", "cost", "runner_state", "flag"):
        assert got.pop(key) == "ok", key
    assert (box.room("w1") / "reports" / "w1.md").read_text() == "done\n"
    assert json.loads((box.data / "claims" / "build-lock.json").read_text())["session"] == "w1"
    assert "w1" in (box.data / "cost.jsonl").read_text()
    assert (box.data / "sessions" / "w1" / "note").read_text() == "needs a key"
    # the door holds each verb to the box's own worker, whatever the arguments say
    assert not (box.data / "claims" / "other-lock.json").exists()
    assert not (box.data / "sessions" / "other" / "note").exists()
    # the data dir is an empty scratch folder inside, so these writes land there (or on
    # /dev/null, for a hidden file) and never on the disk: nothing of the data dir is the
    # box's to write, not even the contract's folders and ledgers
    for key in ("config_write", "journal_write", "other_log_write", "other_brief_write"):
        got.pop(key)
    for key in [k for k in got if k.startswith("data_")]:
        got.pop(key)
    forged = subprocess.run(
        ["grep", "-rl", "forged", str(box.data)], capture_output=True, text=True, check=False
    )
    assert forged.stdout == "", forged.stdout
    # and nothing else: every wall held, every escape failed
    walls = {k: v for k, v in got.items() if not k.startswith("net_")}
    assert walls == dict.fromkeys(walls, "no")
    assert (box.home / "outside.txt").read_text() == "untouched\n"
    assert not (box.home / "new.txt").exists()
    assert (box.home / ".claude" / "settings.json").read_text() == "{}\n"
    assert SECRET in (box.data / "config.json").read_text()
    assert "forged" not in (box.data / "journal.md").read_text()
    assert "forged" not in (box.data / "PLAYBOOK.md").read_text()
    assert "forged" not in (box.data / "sessions" / "other" / "output.log").read_text()
    assert not (box.data / "answers" / "w1-9.json").exists()
    assert "forged" not in (box.data / "prompts" / "other.md").read_text()

    # the allowlisted loopback server answered; the other never saw a request, by any spelling
    assert got["net_allowed"] == "allowed-ok"
    assert allowed.hits == 1
    assert denied.hits == 0
    net = {k: v for k, v in got.items() if k.startswith("net_") and k != "net_allowed"}
    assert all("denied-reached" not in v for v in net.values()), net
    assert "Example Domain" not in net["net_world"]

    # `ls` and `status` say which workers are sandboxed
    ls = box.looop("ls", "-a", "--json")
    rows = {r["id"]: r for r in json.loads(ls.stdout)}
    assert rows["w1"]["sandboxed"] is True and rows["other"]["sandboxed"] is False
    table = box.looop("ls", "-a").stdout
    assert "SANDBOX" in table
    status = json.loads(box.looop("status", "--json").stdout)
    assert {w["id"]: w["sandboxed"] for w in status["workers"]} == {"w1": True, "other": False}
    assert box.looop("kill", "other").returncode == 0  # alive: the box's kill never reached it


def test_ask_is_answered_inside_the_sandbox(tmp_path: Path, srt: Path) -> None:
    box = Box(tmp_path, srt, "on")
    box.start(
        "w1",
        'a=$("$LOOOP_BIN" ask w1 --prompt "ship?" --options yes,no)\n'
        'echo "answer=$a" > "$LOOOP_WORKSPACE/results"\n',
    )
    asks = box.data / "asks" / "w1-1.json"
    clock = SystemClock()
    deadline = clock.monotonic() + 30
    while not asks.exists():  # the worker's ask, written from inside the sandbox
        assert clock.monotonic() < deadline, box.looop("log", "w1").stdout
        box.looop("asks")  # one CLI round trip between looks, not a sleep
    answered = box.looop("answer", "w1-1", "yes")
    assert answered.returncode == 0, answered.stderr
    assert box.wait("w1") == 0
    assert box.results("w1") == {"answer": "yes"}
    log = box.looop("log", "w1").stdout
    assert "config" not in log  # the knobs-only config reads cleanly: no warning inside


def _box_tree(box: Box, wid: str) -> list[psutil.Process]:
    meta = json.loads((box.data / "sessions" / wid / "meta.json").read_text())
    return psutil.Process(int(meta["supervisor_pid"])).children(recursive=True)


def test_killing_a_sandboxed_worker_leaves_nothing_behind(tmp_path: Path, srt: Path) -> None:
    box = Box(tmp_path, srt, "on")
    box.start("w1", 'echo up > "$LOOOP_WORKSPACE/results"\nexec sleep 600\n')
    settings = box.data / "sandbox" / "w1" / "srt.json"
    assert settings.is_file()
    # no shell of srt's stays beside the box to pass its status on: its seccomp helper is the
    # box's first process under bubblewrap
    tree = _box_tree(box, "w1")
    helpers = [p for p in tree if p.name() == "apply-seccomp"]
    assert helpers and not [h for h in helpers if h.parent().name() == "bash"]
    # nor a relay: the box handed its proxy ports to the home's filter, which serves them
    assert {"socat", "bash"} & {p.name() for p in tree} == set()
    done = box.looop("kill", "w1")
    assert done.returncode == 0, done.stderr
    assert box.wait("w1") != 124
    clock = SystemClock()
    deadline = clock.monotonic() + 10
    while _sandbox_procs(box.data):  # bwrap's children go when srt's group is killed
        assert clock.monotonic() < deadline, _sandbox_procs(box.data)
        os.sched_yield()


def test_a_start_without_the_sandbox_says_so_in_ls(tmp_path: Path, srt: Path) -> None:
    box = Box(tmp_path, srt, "on")
    box.start("w1", "exit 0\n", "--no-sandbox")
    assert box.wait("w1") == 0
    assert not (box.data / "sandbox" / "w1" / "srt.json").exists()
    rows = {r["id"]: r for r in json.loads(box.looop("ls", "-a", "--json").stdout)}
    assert rows["w1"]["sandboxed"] is False
    # the same id started again inside: the new run says sandboxed
    box.start("w1", "exit 0\n", "--sandbox")
    assert box.wait("w1") == 0
    rows = {r["id"]: r for r in json.loads(box.looop("ls", "-a", "--json").stdout)}
    assert rows["w1"]["sandboxed"] is True
    # the sys-sessions reading says so too, in its detail (a restart inside wakes no one)
    from looop.core.context import ctx_for
    from looop.sense.probes import probe_sessions

    reading = probe_sessions(ctx_for(box.env, SystemClock(), None))
    assert reading["detail"]["workers"]["w1"]["sandboxed"] is True
    assert all("sandboxed" not in entry for entry in reading["signal"])


# The other worker shows a secret, then, once the sandboxed one is up, floods past its log cap:
# its log rotates under the sandbox, which looks for the secret in every file of that log.
ROTATING_OTHER = (
    "sh -c 'echo ROTATED-SECRET-before; while [ ! -e {go} ]; do sleep 0.05; done; "
    "yes flood-line-of-the-other-worker | head -c 400000; echo ROTATED-SECRET-after; "
    "sleep 600' # {{{{prompt_file}}}}"  # .format: the braces are doubled
)
LOOKER = r"""
r="$LOOOP_WORKSPACE/results"
S="$LOOOP_DATA_DIR/sessions/other"
: > "$LOOOP_WORKSPACE/up"
i=0
while [ ! -e "$LOOOP_WORKSPACE/look" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
for f in "$S"/output.log "$S"/output.log.* "$S"/log/* ; do
  if grep -aq ROTATED-SECRET "$f" 2>/dev/null; then echo "leak=$(basename "$f")" >> "$r"; fi
done
for v in log shot; do
  if "$LOOOP_BIN" $v other 2>/dev/null | grep -aq ROTATED-SECRET; then echo "leak=$v" >> "$r"; fi
done
t() { if grep -aq ROTATED-SECRET "$1" 2>/dev/null; then echo "leak=$2" >> "$r"; fi; }
t "/proc/self/root$S/log/output.log" procroot
t "/proc/self/root$S/output.log" procroot_link
echo end= >> "$r"
"""


def test_another_workers_log_stays_hidden_across_its_rotations(tmp_path: Path, srt: Path) -> None:
    from looop.sessions.logs import log_tail
    from tests.helpers import until

    box = Box(tmp_path, srt, {})
    box.env["LOOOP_SESSION_LOG_MAX_BYTES"] = "65536"
    box.env["LOOOP_SESSION_LOG_MAX_FILES"] = "3"
    go = tmp_path / "go"
    command = ROTATING_OTHER.format(go=go)
    other = box.looop("worker", "start", "other", "x", "--command", command, "--no-sandbox")
    assert other.returncode == 0, other.stderr
    box.start("w1", LOOKER)
    work = Paths.at(box.data).rooms / "w1" / "work"
    assert until(lambda: (work / "up").exists(), 30)  # its sandbox is set up: now rotate
    go.write_text("")
    assert until(lambda: "ROTATED-SECRET-after" in log_tail(box.data, "other", 5), 30)
    assert len(list((box.data / "sessions" / "other" / "log").glob("output.log.*"))) == 2
    (work / "look").write_text("")
    assert box.wait("w1") == 0, box.looop("log", "w1").stdout
    got = box.results("w1")
    assert got == {"end": ""}, got  # no file of the other's log was readable inside
    box.looop("kill", "other")
