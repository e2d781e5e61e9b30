"""looop's own credentials and state stay out of every sandbox (the real srt and bubblewrap):
the data dir is denied as a whole and only what the contract needs is let back in, so the web
token, the worker-token key, web.log and every state file are unreadable from a sandboxed
worker, a sandboxed run_shell and the sandboxed decider — also a credential made after the
worker started — while every contract verb a worker uses still works from inside."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from looop.home.paths import Paths
from tests.helpers import clean_env, wait_until
from tests.sandbox.test_sandboxed_tick import _data, _tick
from tests.sandbox.test_sandboxed_worker import SECRET, Box

pytestmark = pytest.mark.timeout(120)

# Where looop keeps credentials and state no worker needs, relative to the data dir.
PLANTED = (
    ".lock/web-token",
    ".lock/worker-token-key",
    ".lock/web.log",
    ".lock/web.json",
    ".last-failure.json",
    ".tick-backoff",
    ".contract/k1.json",
    "hosts/h1.pem",
    "crash/boom.txt",
    "runs/r1/prompt.md",
    "snapshots/s.json",
    "goals/g1.md",
    "tick.log",
    "journal.md",
    "config.json",
)
# What the loop's own boxes (decider, run_shell) may read: the world the decider is told of.
SECRETS = tuple(n for n in PLANTED if n not in ("goals/g1.md", "snapshots/s.json"))
# Made after the worker started: srt hid only what existed, unless the whole dir is denied.
LATE = (".lock/new-key", ".new-state.json", "newdir/secret", "hosts/h2.pem")


def plant(data: Path, names: tuple[str, ...]) -> None:
    for name in names:
        path = data / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".json") and name != "config.json":  # state: valid JSON
            path.write_text(json.dumps({"token": SECRET}))
        elif name != "config.json":  # the config names a secret already (its notification)
            path.write_text(f"http://127.0.0.1:8765/?token={SECRET}\n")


def reads(
    names: tuple[str, ...], root: str = '"$D"', tag: str = "", skip: tuple[str, ...] = ()
) -> str:
    """Probe lines: each planted file read three ways (its path, through /proc/self/root, and
    through a symlink planted in the workspace), and the directory it sits in searched."""
    out = []
    for i, name in enumerate(names):
        k = f"{tag}{i}"
        out.append(f"t read{k} grep -q SECRET {root}/{name}")
        out.append(f't proc{k} grep -q SECRET "/proc/self/root"{root}/{name}')
        out.append(f'ln -s {root}/{name} "$W/link{k}"; t link{k} grep -q SECRET "$W/link{k}"')
    but = "".join(f" --exclude-dir={d}" for d in skip)  # folders it may read
    out.append(f"t grep_all{tag} grep -rqs{but} SECRET {root}/ /proc/self/root{root}/")
    return "\n".join(out) + "\n"


PROBE_HEAD = r"""
W="$LOOOP_WORKSPACE"
r="$W/results"
t() {
  k=$1; shift
  if "$@" >/dev/null 2>&1; then echo "$k=ok" >> "$r"; else echo "$k=no" >> "$r"; fi
}
D="$LOOOP_DATA_DIR"
"""

CONTRACT = r"""
t claim "$LOOOP_BIN" claim build-lock
t claim_held "$LOOOP_BIN" claim held-lock
t unclaim "$LOOOP_BIN" unclaim build-lock
t tell "$LOOOP_BIN" tell holder "from w1"
t cost "$LOOOP_BIN" cost report session w1 claude 0.25
t report sh -c 'echo done > "$LOOOP_REPORTS_DIR/w1.md"'
t brief grep -q "WORKER CONTRACT" "$D/prompts/w1.md"
t playbook grep -q playbook "$D/PLAYBOOK.md"
t own_log test -r "$D/sessions/w1/output.log"
"""


# Ways around a hidden path: from the starting directory (the data dir), through any process's
# cwd or root in /proc, through an inherited or open directory descriptor; the knobs-only config
# copy it is handed carries no secret either.
AROUND = r"""
t cwd_rel grep -q SECRET .lock/web-token
t proc_cwd grep -q SECRET /proc/self/cwd/.lock/web-token
t any_proc sh -c 'for p in /proc/[0-9]*; do
  grep -qs SECRET "$p/cwd/.lock/web-token" "$p/root$0/.lock/web-token" && exit 0; done; exit 1' "$D"
t any_fd sh -c 'for f in /proc/[0-9]*/fd/*; do
  [ -d "$f" ] && grep -rqs SECRET "$f/" && exit 0; done; exit 1'
t knobs grep -q SECRET "$LOOOP_CONFIG"
"""


def results(path: Path) -> dict[str, str]:
    return dict(ln.split("=", 1) for ln in path.read_text().splitlines())


def test_a_sandboxed_worker_reads_no_credential_or_state_and_keeps_its_contract(
    tmp_path: Path, srt: Path
) -> None:
    box = Box(tmp_path, srt, "on")
    plant(box.data, PLANTED)
    # a live worker outside the sandbox holds a lease: its liveness must still be seen
    holder = box.looop(
        "worker", "start", "holder", "x", "--command", "sleep 600 # {{prompt_file}}", "--no-sandbox"
    )
    assert holder.returncode == 0, holder.stderr
    held = box.looop("claim", "held-lock", "--session", "holder")
    assert held.returncode == 0, held.stderr
    alias = tmp_path / "alias"
    alias.symlink_to(box.data)  # the data dir by another name
    script = (
        PROBE_HEAD
        + CONTRACT
        + reads(PLANTED)
        + reads(PLANTED[:3], f'"{alias}"', "alias")
        + AROUND
        + 'mkfifo "$W/go"; read x < "$W/go"\n'  # the test plants LATE, then writes go
        + reads(LATE, tag="late")
        + """t told sh -c '"$LOOOP_BIN" told w1 | grep -q "steer me"'\n"""
        + 'echo end=1 >> "$r"\n'
    )
    (box.data / "prompts").mkdir(exist_ok=True)
    box.start("w1", script)
    fifo = Paths.at(box.data).rooms / "w1" / "work" / "go"
    wait_until(fifo.exists, 60, "the worker's fifo")
    plant(box.data, LATE)
    told = box.looop("tell", "w1", "steer me")
    assert told.returncode == 0, told.stderr
    with open(fifo, "w") as f:  # the worker reads on only now
        f.write("go\n")
    assert box.wait("w1") == 0, box.looop("log", "w1").stdout
    got = results(Paths.at(box.data).rooms / "w1" / "work" / "results")
    assert got.pop("end") == "1", box.looop("log", "w1").stdout
    contract = ("claim", "unclaim", "told", "tell", "cost", "report", "brief", "playbook")
    for key in contract:  # through the door, or its room and what it reads
        assert got.pop(key) == "ok", (key, box.looop("log", "w1").stdout)
    assert got.pop("own_log") == "no"  # sessions/ is looop's: hidden, its own too
    assert got.pop("claim_held") == "no"  # held by a live session: refused from inside
    assert got == dict.fromkeys(got, "no"), {k: v for k, v in got.items() if v != "no"}
    assert json.loads((box.data / "claims" / "held-lock.json").read_text())["session"] == "holder"
    assert not (box.data / "claims" / "build-lock.json").exists()
    assert (Paths.at(box.data).rooms / "w1" / "reports" / "w1.md").read_text() == "done\n"
    assert "w1" in (box.data / "cost.jsonl").read_text()
    assert "from w1" in box.looop("told", "holder").stdout
    box.looop("kill", "holder")


def test_a_sandboxed_run_shell_reads_no_credential_or_state(tmp_path: Path, srt: Path) -> None:
    box = Box(tmp_path, srt, "off")
    cfg = json.loads((box.data / "config.json").read_text())
    (box.data / "config.json").write_text(json.dumps({**cfg, "shell_policy": {"sandbox": "on"}}))
    plant(box.data, PLANTED)
    for name in SECRETS:
        for path in (f"$LOOOP_DATA_DIR/{name}", f"/proc/self/root$LOOOP_DATA_DIR/{name}"):
            done = box.looop("run", "--", "sh", "-c", f'grep -q SECRET "{path}"')
            assert done.returncode != 0, (path, done.stdout, done.stderr)
    ok = box.looop("run", "--", "sh", "-c", 'echo made > "$LOOOP_REPORTS_DIR/r.md"')
    assert ok.returncode == 0, ok.stderr
    assert (Paths.at(box.data).rooms / "+run_shell" / "reports" / "r.md").read_text() == "made\n"


DECIDER = r"""
run=$(dirname "$1")
r="$TMPDIR/results"
t() {
  k=$1; shift
  if "$@" >/dev/null 2>&1; then echo "$k=ok" >> "$r"; else echo "$k=no" >> "$r"; fi
}
D="$LOOOP_DATA_DIR"
W="$TMPDIR"
"""


def test_the_sandboxed_decider_reads_no_credential_but_the_world_it_decides_on(
    tmp_path: Path, srt: Path
) -> None:
    script = tmp_path / "decider.sh"
    script.write_text(
        DECIDER
        + reads(SECRETS, skip=("goals", "snapshots", '"$(basename "$run")"'))
        + 't playbook grep -q playbook "$D/PLAYBOOK.md"\n'
        + 't goal grep -q SECRET "$D/goals/g1.md"\n'
        + 'printf \'%s\\n\' \'{"action":"noop","journal":"decided inside"}\' > "$LOOOP_DECISION"\n'
    )
    home, data = _data(tmp_path, f"bash {script} {{{{prompt_file}}}}", "on")
    plant(data, PLANTED)
    done = _tick(clean_env(home, data, LOOOP_SRT=str(srt)), home)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "decided inside" in (data / "journal.md").read_text()
    got = results(Paths.at(data).rooms / "+tick" / "tmp" / "results")
    # the decider may make one read of the world it is told about: the playbook and goals
    assert got.pop("playbook") == "ok" and got.pop("goal") == "ok"
    assert got == dict.fromkeys(got, "no"), {k: v for k, v in got.items() if v != "no"}
