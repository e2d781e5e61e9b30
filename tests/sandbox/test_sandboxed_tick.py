"""The tick runner inside the sandbox (the real srt and bubblewrap), under its runner's
`sandbox` setting: the decide call writes its decision and its room's TMPDIR and nothing of
the data dir else (its run dir is read-only: its prompt), reads
no secret, reaches only the allowlisted server; where srt cannot run, the beat fails with one
line naming what is missing and the runner never runs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from looop.home.paths import Paths
from tests.helpers import clean_env
from tests.sandbox.test_sandboxed_worker import LOOOP, SECRET, Server, servers  # noqa: F401

pytestmark = pytest.mark.timeout(120)

# The decider: tries the walls (results in its TMPDIR, the one folder it may write), then
# answers as an agent CLI does, in place.
PROBE = r"""
run=$(dirname "$1")
r="$TMPDIR/results"
t() {
  k=$1; shift
  if "$@" >/dev/null 2>&1; then echo "$k=ok" >> "$r"; else echo "$k=no" >> "$r"; fi
}
t prompt_read test -s "$1"
D="$LOOOP_DATA_DIR"
t run_dir sh -c 'echo mine > "$0/scratch"' "$run"
t tmpdir sh -c 'echo mine > "$TMPDIR/f"'
t ssh_read grep -q SECRET "$HOME/.ssh/id_ed25519"
t config_read grep -q SECRET "$D/config.json"
t config_write sh -c 'echo "{}" > "$0/config.json"' "$D"
t journal_write sh -c 'echo forged >> "$0/journal.md"' "$D"
t playbook_write sh -c 'echo forged >> "$0/PLAYBOOK.md"' "$D"
t sensor_plant sh -c 'echo "#!/bin/sh" > "$0/sensors/evil.sh"' "$D"
t home_write sh -c 'echo pwned > "$HOME/outside.txt"'
c() { k=$1; shift; out=$(curl -s -m 10 "$@" 2>/dev/null); echo "$k=${out:-none}" >> "$r"; }
c net_allowed "http://127.0.0.1:$OK/"
c net_denied "http://127.0.0.1:$NO/"
printf '%s\n' '{"action":"noop","journal":"decided inside"}' > "$LOOOP_DECISION"
"""

# A decider that answers in the data dir, as the old contract had it, and plants a file there.
IN_DATA = r"""
D="$LOOOP_DATA_DIR"
printf '%s\n' '{"action":"noop","journal":"forged in the data dir"}' > "$D/.decision.json"
echo planted > "$D/planted"
echo planted > "$D/runs/planted"
"""


def _data(tmp_path: Path, tick: str, sandbox: object) -> tuple[Path, Path]:
    home, data = tmp_path / "home", tmp_path / "data"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text(SECRET + "\n")
    (home / "outside.txt").write_text("untouched\n")
    (data / "sensors").mkdir(parents=True)
    runner = {"tick": tick, "worker": "x {{prompt_file}}", "sandbox": sandbox}
    cfg = {"default": "probe", "runners": {"probe": runner}, "notification": f"echo {SECRET}"}
    (data / "config.json").write_text(json.dumps(cfg))
    (data / "journal.md").write_text("journal\n")
    (data / "PLAYBOOK.md").write_text("playbook\n")
    return home, data


def _tick(env: dict[str, str], home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LOOOP, "tick", "--force"],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def test_the_decide_call_runs_inside_the_sandbox(
    tmp_path: Path,
    srt: Path,
    servers: tuple[Server, Server],  # noqa: F811
) -> None:
    allowed, denied = servers
    script = tmp_path / "decider.sh"
    script.write_text(f"OK={allowed.port}\nNO={denied.port}\n{PROBE}")
    policy = {"domains": [f"127.0.0.1:{allowed.port}"]}
    home, data = _data(tmp_path, f"bash {script} {{{{prompt_file}}}}", policy)
    env = clean_env(home, data, LOOOP_SRT=str(srt))
    done = _tick(env, home)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (data / "sandbox" / "+tick" / "srt.json").is_file()  # it ran under srt
    assert "decided inside" in (data / "journal.md").read_text()  # its decision was acted on
    results = Paths.at(data).rooms / "+tick" / "tmp" / "results"
    got = dict(ln.split("=", 1) for ln in results.read_text().splitlines())
    assert got.pop("prompt_read") == "ok" and got.pop("tmpdir") == "ok"
    [run] = [p for p in (data / "runs").iterdir() if (p / "prompt.md").is_file()]
    assert not (run / "scratch").exists()  # its run dir is looop's: read-only inside
    assert got.pop("net_allowed") == "allowed-ok"
    assert got.pop("net_denied") != "denied-reached" and denied.hits == 0
    # the data dir is an empty scratch folder inside (the playbook is read-only in it): what
    # the decider writes there is lost, the files below stay as they were
    got.pop("journal_write"), got.pop("config_write")
    assert got == dict.fromkeys(got, "no"), got
    assert SECRET in (data / "config.json").read_text()
    assert "forged" not in (data / "journal.md").read_text()
    assert (data / "PLAYBOOK.md").read_text() == "playbook\n"
    assert not (data / "sensors" / "evil.sh").exists()
    assert (home / "outside.txt").read_text() == "untouched\n"


def test_a_sandboxed_decider_writes_nothing_in_the_data_dir(tmp_path: Path, srt: Path) -> None:
    """Its one answer goes to its room beside the data dir: a decision (or any file) it writes
    in the data dir never reaches the host, so none is executed."""
    script = tmp_path / "decider.sh"
    script.write_text(IN_DATA)
    home, data = _data(tmp_path, f"bash {script}", "on")
    (data / "runs").mkdir()
    done = _tick(clean_env(home, data, LOOOP_SRT=str(srt)), home)
    out = done.stdout + done.stderr
    assert done.returncode != 0 and "wrote no .decision.json" in out, out
    assert str(Paths.at(data).decide_room) in out  # it names where the decision goes
    assert "forged" not in (data / "journal.md").read_text()
    for name in (".decision.json", "planted", "runs/planted"):
        assert not (data / name).exists(), name


def test_a_sandboxed_decider_runs_where_its_decision_goes(tmp_path: Path, srt: Path) -> None:
    """A bare `.decision.json` (the name an agent CLI writes in its workspace) is the answer."""
    tick = """echo '{"action":"noop","journal":"bare name"}' > .decision.json"""
    home, data = _data(tmp_path, tick, "on")
    done = _tick(clean_env(home, data, LOOOP_SRT=str(srt)), home)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "bare name" in (data / "journal.md").read_text()
    assert not (data / ".decision.json").exists()


def test_a_sandboxed_tick_that_writes_no_decision_says_so(tmp_path: Path, srt: Path) -> None:
    """A decision left in the decide room by an earlier run is removed before the runner
    starts, never taken for this run's."""
    home, data = _data(tmp_path, "true", "on")
    room = Paths.at(data).decide_room
    room.mkdir(parents=True)
    (room / ".decision.json").write_text('{"action":"noop","journal":"left over"}')
    (room / "junk").write_text("an earlier box's\n")
    done = _tick(clean_env(home, data, LOOOP_SRT=str(srt)), home)
    assert done.returncode != 0
    assert "wrote no .decision.json" in done.stdout + done.stderr
    assert "left over" not in (data / "journal.md").read_text()
    assert not (data / ".decision.json").exists()
    assert not (room / ".decision.json").exists() and not (room / "junk").exists()


def test_a_sandboxed_tick_where_srt_cannot_run_fails_with_one_line(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    home, data = _data(
        tmp_path, f'touch {marker}; echo \'{{"action":"noop"}}\' > .decision.json', "on"
    )
    env = clean_env(home, data, PATH="/nonexistent")
    done = _tick(env, home)
    assert done.returncode != 0
    out = done.stdout + done.stderr
    assert "the tick runner 'probe' cannot run sandboxed: missing srt" in out, out
    assert "bwrap (apt-get install bubblewrap)" in out and "Traceback" not in out
    assert not marker.exists()  # never a silent fallback to no sandbox
    assert not (data / ".decision.json").exists()


def test_a_decider_refused_by_the_network_filter_fails_naming_the_key(
    tmp_path: Path, srt: Path
) -> None:
    """A decider whose API host is off the allowlist gets the proxy's 403 at once, and the
    beat's one line says it was the sandbox and which config key lets the host through."""
    script = tmp_path / "decider.sh"
    script.write_text(
        "out=$(curl -s -m 20 http://api.not-listed.example/v1/messages)\n"
        'echo "API Error: 403 $out"\nexit 1\n'
    )
    home, data = _data(tmp_path, f"bash {script}", "on")
    done = _tick(clean_env(home, data, LOOOP_SRT=str(srt)), home)
    assert done.returncode != 0
    out = done.stdout + done.stderr
    line = next(ln for ln in out.splitlines() if "blocked by network allowlist" in ln)
    assert "the sandbox of the tick runner 'probe' refused a host" in line, out
    assert '"sandbox": {"domains": [...]}' in line
