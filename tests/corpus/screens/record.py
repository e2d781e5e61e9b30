"""Records tmux.json: what tmux shows for each of the package's random streams."""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from pathlib import Path

from tests.corpus.screens import HERE, stream_of

SEEDS = range(12)


def tmux_rows(data: bytes, cols: int, rows: int) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        stream, done, sock = Path(tmp, "stream"), Path(tmp, "done"), str(Path(tmp, "sock"))
        stream.write_bytes(data)
        run = f"stty raw -echo; cat {stream}; touch {done}; sleep 60"
        tmux = ["tmux", "-S", sock, "-f", "/dev/null"]
        size = ["-x", str(cols), "-y", str(rows)]
        subprocess.run([*tmux, "new-session", "-d", *size, run], check=True)
        try:
            deadline = time.monotonic() + 10
            while not done.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.5)  # a recording, not a test: let tmux draw the last bytes
            out = subprocess.run([*tmux, "capture-pane", "-p"], capture_output=True, text=True)
        finally:
            subprocess.run([*tmux, "kill-server"], capture_output=True)
    lines = [line.rstrip() for line in out.stdout.split("\n")][:rows]
    return lines + [""] * (rows - len(lines))


def main() -> None:
    screens = {}
    for seed in SEEDS:
        data, cols, rows = stream_of(seed)
        screens[str(seed)] = {"cols": cols, "rows": rows, "text": tmux_rows(data, cols, rows)}
    (HERE / "tmux.json").write_text(json.dumps(screens, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
