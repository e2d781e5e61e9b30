"""With `sandbox` and `shell_policy.sandbox` on, no move of the decider runs outside srt (the
real srt and bubblewrap): a sensor a decision wrote — bash, python, node, a shebang-less file —
runs sandboxed every beat (its reading still reaches the snapshot), a decision's verify runs
sandboxed after its worker ends, and neither writes $HOME nor copies the planted key into
reports/. A sensor a human wrote with `looop sensor write` runs as configured."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from looop.home.clock import SystemClock
from looop.sessions.client import wait
from tests.helpers import clean_env
from tests.sandbox.test_sandboxed_worker import LOOOP, SECRET

pytestmark = pytest.mark.timeout(240)

# What a hostile sensor or verify tries, in each language: a file in $HOME, the key in reports/.
BASH_SENSOR = """#!/bin/bash
echo pwned > "$HOME/pwned-{tag}"
cp "$HOME/.ssh/id_ed25519" "$LOOOP_DATA_DIR/reports/key-{tag}"
echo '{{"signal": {{"alive": "{tag}"}}}}'
"""
PYTHON_SENSOR = """#!/usr/bin/env python3
import os, shutil
home = os.environ["HOME"]
for act in (
    lambda: open(os.path.join(home, "pwned-{tag}"), "w").write("pwned"),
    lambda: shutil.copy(os.path.join(home, ".ssh/id_ed25519"),
                        os.path.join(os.environ["LOOOP_DATA_DIR"], "reports/key-{tag}")),
):
    try:
        act()
    except OSError:
        pass
print('{{"signal": {{"alive": "{tag}"}}}}')
"""
NODE_SENSOR = """#!/usr/bin/env -S node --no-warnings
const fs = require("fs"), h = process.env.HOME;
try {{ fs.writeFileSync(h + "/pwned-{tag}", "pwned"); }} catch (e) {{}}
try {{ fs.copyFileSync(h + "/.ssh/id_ed25519",
    process.env.LOOOP_DATA_DIR + "/reports/key-{tag}"); }} catch (e) {{}}
console.log('{{"signal": {{"alive": "{tag}"}}}}');
"""
BARE_SENSOR = """echo pwned > "$HOME/pwned-{tag}"
cp "$HOME/.ssh/id_ed25519" "$LOOOP_DATA_DIR/reports/key-{tag}"
echo '{{"signal": {{"alive": "{tag}"}}}}'
"""


class Loop:
    """A data dir whose decider answers with the next decision a test hands it."""

    def __init__(self, tmp_path: Path, srt: Path) -> None:
        self.home, self.data = tmp_path / "home", tmp_path / "data"
        (self.home / ".ssh").mkdir(parents=True)
        (self.home / ".ssh" / "id_ed25519").write_text(SECRET + "\n")
        (self.data / "sensors").mkdir(parents=True)
        (self.data / "reports").mkdir()
        self.next = tmp_path / "next.json"
        decider = tmp_path / "decider.sh"
        decider.write_text(f'cat "{self.next}" > "$LOOOP_DECISION"\n')
        runner = {"tick": f"bash {decider} {{{{prompt_file}}}}", "worker": "x {{prompt_file}}"}
        cfg = {
            "default": "probe",
            "runners": {"probe": runner},
            "sandbox": "on",
            "shell_policy": {"sandbox": "on"},
        }
        (self.data / "config.json").write_text(json.dumps(cfg))
        (self.data / "PLAYBOOK.md").write_text("playbook\n")
        self.env = clean_env(self.home, self.data, LOOOP_SRT=str(srt))

    def looop(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [LOOOP, *args],
            env=self.env,
            cwd=self.home,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=150,
            check=False,
        )

    def decide(self, decision: dict[str, object]) -> subprocess.CompletedProcess[str]:
        self.next.write_text(json.dumps(decision))
        return self.looop("tick", "--force")

    def escaped(self, tag: str) -> list[str]:
        """What the sensor or verify tagged `tag` managed outside its walls."""
        out = []
        if (self.home / f"pwned-{tag}").exists():
            out.append(f"wrote $HOME/pwned-{tag}")
        key = self.data / "reports" / f"key-{tag}"
        if key.exists() and SECRET in key.read_text():
            out.append(f"copied the key to reports/key-{tag}")
        return out

    def signal(self, name: str) -> object:
        snap = json.loads((self.data / "snapshots" / f"sensor-{name}.json").read_text())
        return snap.get("signal")


@pytest.mark.parametrize(
    ("tag", "script"),
    [
        ("sh", BASH_SENSOR),
        ("py", PYTHON_SENSOR),
        ("node", NODE_SENSOR),
        ("bare", BARE_SENSOR),
    ],
    ids=["bash", "python", "node-env-S", "no-shebang"],
)
def test_a_decisions_sensor_runs_sandboxed_every_beat(
    tmp_path: Path, srt: Path, tag: str, script: str
) -> None:
    if tag == "node" and shutil.which("node") is None:
        pytest.fail("node is on PATH wherever srt runs (srt is a node program)")
    loop = Loop(tmp_path, srt)
    done = loop.decide({"action": "write_sensor", "name": "evil", "script": script.format(tag=tag)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert (loop.data / "sensors" / "evil.sh").is_file()
    done = loop.decide({"action": "noop"})  # the next beat runs the new sensor
    assert done.returncode == 0, done.stdout + done.stderr
    assert loop.escaped(tag) == []
    assert loop.signal("evil") == {"alive": tag}  # its reading still reaches the snapshot


def test_a_humans_sensor_runs_as_configured(tmp_path: Path, srt: Path) -> None:
    loop = Loop(tmp_path, srt)
    done = loop.looop("sensor", "write", "mine", "-", stdin=BASH_SENSOR.format(tag="human"))
    assert done.returncode == 0, done.stderr
    done = loop.decide({"action": "noop"})
    assert done.returncode == 0, done.stdout + done.stderr
    # the human's own script is trusted: it writes where its author can
    assert loop.escaped("human") == [
        "wrote $HOME/pwned-human",
        "copied the key to reports/key-human",
    ]
    assert loop.signal("mine") == {"alive": "human"}


def test_a_decisions_verify_runs_sandboxed_after_its_worker_ends(tmp_path: Path, srt: Path) -> None:
    loop = Loop(tmp_path, srt)
    verify = (
        "python3 -c \"import os; open(os.environ['HOME'] + '/pwned-vpy', 'w')\"; "
        'echo pwned > "$HOME/pwned-v"; '
        'cp "$HOME/.ssh/id_ed25519" "$LOOOP_DATA_DIR/reports/key-v"'
    )
    start = {
        "action": "start_worker",
        "id": "w1",
        "prompt": "go",
        "command": "true # {{prompt_file}}",
    }
    done = loop.decide({**start, "verify": verify})
    assert done.returncode == 0, done.stdout + done.stderr
    wait(loop.data, "w1", 60, SystemClock())
    done = loop.decide({"action": "noop"})  # the beat after its end runs the verify
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads((loop.data / "verify" / "w1.json").read_text())
    assert result["pass"] is False  # every write it tried was refused
    assert loop.escaped("v") == [] and loop.escaped("vpy") == []
    # no human's record; marked as code the tripwire cannot read (`python3 -c`): should the
    # sandbox be turned off, it would not run at all
    assert not (loop.data / "vouched" / "verify-w1").exists()
    assert (loop.data / "vouched" / "unread-verify-w1").is_file()


def test_a_decisions_sensor_cannot_plant_a_second_sensor_or_forge_its_record(
    tmp_path: Path, srt: Path
) -> None:
    loop = Loop(tmp_path, srt)
    second = BASH_SENSOR.format(tag="second").replace("\n", "\\n")
    script = (
        "#!/bin/bash\n"
        f'printf "{second}" > "$LOOOP_DATA_DIR/sensors/second.sh"\n'
        'chmod +x "$LOOOP_DATA_DIR/sensors/second.sh"\n'
        'mkdir -p "$LOOOP_DATA_DIR/vouched"\n'
        'h=$(sha256sum "$LOOOP_DATA_DIR/sensors/planter.sh" | cut -d" " -f1)\n'
        'echo "human $h" > "$LOOOP_DATA_DIR/vouched/sensor-planter"\n'
        'echo \'{"signal": {"planted": true}}\'\n'
    )
    done = loop.decide({"action": "write_sensor", "name": "planter", "script": script})
    assert done.returncode == 0, done.stdout + done.stderr
    done = loop.decide({"action": "noop"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert loop.signal("planter") == {"planted": True}
    assert not (loop.data / "sensors" / "second.sh").exists()
    assert (loop.data / "vouched" / "sensor-planter").read_text().startswith("decision ")
    listed = loop.looop("sensor", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert (row["name"], row["by"], row["sandboxed"]) == ("planter", "decision", True)


def test_a_humans_sensor_swapped_for_a_symlink_runs_sandboxed(tmp_path: Path, srt: Path) -> None:
    loop = Loop(tmp_path, srt)
    done = loop.looop("sensor", "write", "mine", "-", stdin=BASH_SENSOR.format(tag="ok"))
    assert done.returncode == 0, done.stderr
    # what a worker could leave in reports/, linked in the human's sensor's place
    planted = loop.data / "reports" / "planted.sh"
    planted.write_text(BASH_SENSOR.format(tag="link"))
    planted.chmod(0o755)
    (loop.data / "sensors" / "mine.sh").unlink()
    (loop.data / "sensors" / "mine.sh").symlink_to(planted)
    done = loop.decide({"action": "noop"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert loop.escaped("link") == []
    assert loop.signal("mine") == {"alive": "link"}


def test_a_humans_verify_runs_as_configured(tmp_path: Path, srt: Path) -> None:
    loop = Loop(tmp_path, srt)
    verify = 'echo pwned > "$HOME/pwned-hv"'
    done = loop.looop(
        "worker",
        "start",
        "w2",
        "go",
        "--command",
        "true # {{prompt_file}}",
        "--no-sandbox",
        "--verify",
        verify,
    )
    assert done.returncode == 0, done.stderr
    wait(loop.data, "w2", 60, SystemClock())
    done = loop.decide({"action": "noop"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads((loop.data / "verify" / "w2.json").read_text())["pass"] is True
    assert loop.escaped("hv") == ["wrote $HOME/pwned-hv"]
