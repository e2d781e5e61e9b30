"""Records the corpus's `custom` screens (tests/corpus/needs/custom/): commands no runner
profile knows, each a real looop session on a real PTY, its plain screen taken once it has
printed and its output has gone quiet (what its supervisor judges then) with what the kernel
said then of its terminal's reader (home/procstat.reads_terminal), at 80x24 and 120x40.

Not a test: `python -m tests.corpus.needs.record_custom DIR` writes DIR/custom/<n>.txt, .how
and DIR/kernel.json; label each screen by looking at it, then add them with
`python -m tests.corpus.needs.add DIR LABELS.json` (README.md)."""

from __future__ import annotations

import json
import os
import shlex
import sys
import tempfile
from pathlib import Path

from looop.core.procstat import reads_terminal
from looop.home.clock import SystemClock
from looop.sessions.client import screenshot, wait_idle
from looop.sessions.spawner import spawn
from looop.sessions.state import get_session
from tests.helpers import kill_sessions, until

PY = shlex.quote(sys.executable)
# what each scene runs (in a scratch folder); a scene waits for a human or shows it is busy
SCENES = [
    "read -p 'Do you want to proceed? (y/N) ' a",
    f"{PY} -c \"input('Overwrite config.toml? [y/N] ')\"",
    "touch a b; cp -i a b",
    "touch gone; rm -i gone",
    "read -p 'Press Enter to continue...' a",
    "read -s -p 'Password: ' a",
    f"{PY} -c 'import getpass; getpass.getpass()'",
    "ssh-keygen -q -f ./key",
    "printf 'protocol=https\\nhost=example.com\\n\\n' | GIT_ASKPASS= git credential fill",
    "npm init",
    f"{PY} -c \"input('What should the project be called? ')\"",
    "printf '1) apple\\n2) pear\\n'; read -p 'Choose a fruit [1-2]: ' a",
    "read -p 'Release notes > ' a",
    "echo 'Deploying to staging'; read -p 'Type the name of the service to confirm: ' a",
    'for i in $(seq 1 30); do echo "[$i/60] Compiling crate_$i"; done; echo Linking:; sleep 600',
    "echo 'Running test suite:'; sleep 600",
    "echo 'Downloading dependencies...'; echo 'Which version to use? Resolving:'; sleep 600",
    "echo 'Asked earlier: Proceed? (y/N) y'; echo 'Installing packages'; sleep 600",
    f"{PY} -c \"import sys,time; sys.stdout.write('Uploading  42% |########      |'); "
    'sys.stdout.flush(); time.sleep(600)"',
    "echo 'Why did the build fail? Looking at the logs:'; sleep 600",
    "PS1='$ ' bash --norc -i",
    "PS1='dev@box:~/app$ ' bash --norc -i",
    f"{PY} -m http.server 0",
    "echo 'INFO: watching for changes'; sleep 600",
]
SIZES = ((80, 24), (120, 40))


def _quiet_screen(root: Path, sid: str) -> tuple[str, bool | None]:
    """The session's screen once it has printed and gone quiet, and the kernel's word then."""
    log = root / "sessions" / sid / "output.log"
    until(lambda: log.exists() and log.stat().st_size > 0, 30)  # node starts slowly
    wait_idle(root, sid, 1.5, 30, SystemClock())
    pid = get_session(root, sid).child_pid
    said = reads_terminal(pid) if pid else None
    return str(screenshot(root, sid, "plain", True).get("text", "")), said


def record(out: Path) -> dict[str, bool | None]:
    """Every scene at every size into out/custom/; the kernel's word on each, by file."""
    (out / "custom").mkdir(parents=True, exist_ok=True)
    kernel: dict[str, bool | None] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root, work = Path(tmp) / "data", Path(tmp) / "work"
        root.mkdir()
        work.mkdir()
        env = {"PATH": os.environ["PATH"], "HOME": tmp, "LANG": "C.UTF-8", "TERM": "xterm"}
        try:
            n = 0
            for cols, rows in SIZES:
                for cmd in SCENES:
                    n += 1
                    sid = f"s{n}"
                    spawn(root, sid, ["bash", "-c", cmd], cwd=work, env=env, size=(cols, rows))
                    text, said = _quiet_screen(root, sid)
                    name, run = f"{n:03d}.txt", cmd.replace(PY, "python")
                    (out / "custom" / name).write_text(text)
                    (out / "custom" / f"{n:03d}.how").write_text(
                        f"{cols}x{rows}, quiet 1.5 s, kernel: {said}; bash -c {run}\n"
                    )
                    kernel[name] = said
                    kill_sessions(root)
                    for f in work.iterdir():
                        f.unlink()
        finally:
            kill_sessions(root)
    (out / "kernel.json").write_text(json.dumps(kernel, indent=1) + "\n")
    return kernel


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m tests.corpus.needs.record_custom DIR")
    print(record(Path(sys.argv[1])))
