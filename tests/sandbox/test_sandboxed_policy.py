"""A decision cannot loosen the human's policy (the real srt and bubblewrap): in a home as
`looop init --sandbox` leaves it, a decided run_shell cannot write the config or a hook script
the config runs, however it spells the write, so the next decided worker is still boxed and
reads no key; `doctor` names a part of the decider the human left unboxed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from looop.home.clock import SystemClock
from looop.sessions.client import wait
from tests.helpers import clean_env
from tests.sandbox.test_sandboxed_worker import LOOOP, SECRET

pytestmark = pytest.mark.timeout(300)

# every spelling of "turn the sandbox off" a decided run_shell (run in the data dir) might use
OFF = '{"default": "probe", "runners": {}, "sandbox": "off"}'
ATTACKS = {
    "sed -i": 'sed -i \'s/"on"/"off"/\' config.json',
    "echo >": f"echo '{OFF}' > \"$LOOOP_DATA_DIR/config.json\"",
    "cp": f'echo \'{OFF}\' > "$TMPDIR/c" && cp "$TMPDIR/c" "$LOOOP_DATA_DIR/config.json"',
    "mv": f'echo \'{OFF}\' > "$TMPDIR/c" && mv -f "$TMPDIR/c" "$LOOOP_DATA_DIR/config.json"',
    "symlink": f'ln -s "$LOOOP_DATA_DIR/config.json" "$TMPDIR/l" && echo \'{OFF}\' > "$TMPDIR/l"',
    "python -c": "python3 -c \"open('$LOOOP_DATA_DIR/config.json', 'w').write('{}')\"",
    "the hook": 'echo "cat $HOME/.ssh/id_rsa > $HOME/leak" >> "$HOOK"',
}


class Home:
    """A home as `looop init --sandbox` writes it, with a notification hook of the human's,
    whose decider answers with the next decision a test hands it."""

    def __init__(self, tmp_path: Path, srt: Path, shared: Path | None = None) -> None:
        """`shared`: a folder the human lets every box write, which holds the config and the
        hook (else they are where init and a user put them)."""
        self.home, self.data = tmp_path / "home", tmp_path / "data"
        (self.home / ".ssh").mkdir(parents=True)
        (self.home / ".ssh" / "id_rsa").write_text(SECRET + "\n")
        self.hook = (shared or self.home) / "bin" / "notify.sh"
        self.hook.parent.mkdir(parents=True)
        self.hook.write_text('#!/bin/sh\necho "$LOOOP_MESSAGE"\n')
        self.next = tmp_path / "next.json"
        decider = tmp_path / "decider.sh"
        decider.write_text(f'cat "{self.next}" > "$LOOOP_DECISION"\n')
        self.env = clean_env(self.home, self.data, LOOOP_SRT=str(srt), HOOK=str(self.hook))
        self.config = self.data / "config.json"
        if shared is not None:
            self.config = shared / "looop" / "config.json"
            self.env.update(LOOOP_CONFIG=str(self.config), SHARED=str(shared))
        made = self.looop(
            "init",
            "--sandbox",
            "--runner",
            "custom",
            "--tick-command",
            f"bash {decider} {{{{prompt_file}}}}",
            "--worker-command",
            "true {{prompt_file}}",
        )
        assert made.returncode == 0, made.stdout + made.stderr
        assert "the decider and every worker run inside srt" in made.stdout, made.stdout
        cfg = json.loads(self.config.read_text())
        cfg["notification"] = f"sh {self.hook}"
        if shared is not None:
            cfg["sandbox"] = {"write": [str(shared)]}
        self.config.write_text(json.dumps(cfg))

    def looop(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [LOOOP, *args],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=150,
            check=False,
        )

    def decide(self, decision: dict[str, object]) -> subprocess.CompletedProcess[str]:
        self.next.write_text(json.dumps(decision))
        return self.looop("tick", "--force")


def test_a_decided_run_shell_cannot_turn_the_sandbox_off(tmp_path: Path, srt: Path) -> None:
    home = Home(tmp_path, srt)
    config, hook = home.config.read_bytes(), home.hook.read_bytes()
    for name, cmd in ATTACKS.items():
        home.decide({"action": "run_shell", "cmd": cmd, "reason": name})
        assert home.config.read_bytes() == config, f"{name} wrote the config"
        assert home.hook.read_bytes() == hook, f"{name} wrote the hook"
    start = {
        "action": "start_worker",
        "id": "w1",
        "prompt": "go",
        "command": 'cat "$HOME/.ssh/id_rsa"; echo read-done # {{prompt_file}}',
    }
    done = home.decide(start)
    assert done.returncode == 0, done.stdout + done.stderr
    wait(home.data, "w1", 60, SystemClock())
    log = (home.data / "sessions" / "w1" / "output.log").read_text()
    assert "read-done" in log, log
    assert SECRET not in log  # the worker the next beat started is still boxed


def test_doctor_names_the_part_of_the_decider_left_unsandboxed(tmp_path: Path, srt: Path) -> None:
    home = Home(tmp_path, srt)
    said = home.looop("doctor")
    assert (
        "✓ decider: the decide call, its run_shell, sensors and verifies run in srt" in said.stdout
    )
    cfg = json.loads(home.config.read_text())
    home.config.write_text(json.dumps({**cfg, "shell_policy": {"sandbox": "off"}}))
    said = home.looop("doctor")
    assert (
        "! decider: the sandbox is on, but its run_shell, sensors and verifies run unsandboxed"
        in said.stdout
    ), said.stdout


# the same from a folder the box may write, where the human keeps the config and the hook: a
# folder on their way renamed and made again would put the box's own file at their path
SHARED_ATTACKS = {
    "sed -i": 'sed -i \'s/"write"/"off"/\' "$LOOOP_CONFIG"',
    "mv": f'echo \'{OFF}\' > "$TMPDIR/c" && mv -f "$TMPDIR/c" "$LOOOP_CONFIG"',
    "rename its folder": (
        f'mv "$SHARED/looop" "$SHARED/old" && mkdir "$SHARED/looop" && '
        f"echo '{OFF}' > \"$LOOOP_CONFIG\""
    ),
    "the hook": 'echo "cat $HOME/.ssh/id_rsa > $HOME/leak" >> "$HOOK"',
    "rename the hook's folder": (
        'mv "$SHARED/bin" "$SHARED/old-bin" && mkdir "$SHARED/bin" && echo "id" > "$HOOK"'
    ),
}


def test_a_folder_the_box_may_write_does_not_open_the_config_or_a_hook(
    tmp_path: Path, srt: Path
) -> None:
    shared = tmp_path / "shared"
    home = Home(tmp_path, srt, shared)
    config, hook = home.config.read_bytes(), home.hook.read_bytes()
    for name, cmd in SHARED_ATTACKS.items():
        home.decide({"action": "run_shell", "cmd": cmd, "reason": name})
        assert home.config.read_bytes() == config, f"{name} wrote the config"
        assert home.hook.read_bytes() == hook, f"{name} wrote the hook"
    done = home.decide({"action": "run_shell", "cmd": 'echo kept > "$SHARED/notes"'})
    assert done.returncode == 0, done.stdout + done.stderr
    assert (shared / "notes").read_text() == "kept\n"  # the rest of the folder stays writable
