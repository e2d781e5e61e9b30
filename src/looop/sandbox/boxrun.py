"""A box's command line, as its session stores it: `python -m looop.sandbox.boxrun LIB BASE DATA
SETTINGS LINE [WORKER]` asks the home's sandbox host (sandbox/boxhost.py) to wrap LINE under the
settings file (a worker's box registered as WORKER's, for its door), then becomes
bubblewrap's line (exec: nothing of it stays). The wrap happens at each run, as `srt -s
SETTINGS -c LINE` did, so a restarted session gets the host and bridge alive now — a stored
bubblewrap line would name a bridge that died with an idle host."""

from __future__ import annotations

import os
import sys

from looop.home import jsonio
from looop.sandbox import boxhost


def main(argv: list[str]) -> int:
    if len(argv) not in (5, 6):
        sys.stderr.write(
            "usage: python -m looop.sandbox.boxrun LIB BASE DATA SETTINGS LINE [WORKER]\n"
        )
        return 2
    lib, base, data, path, line = argv[:5]
    door = argv[5] if len(argv) == 6 else ""  # a worker's box: the door it may knock on
    try:
        with open(path, encoding="utf-8") as f:
            settings = jsonio.loads(f.read())
        home = boxhost.Home(base, data, dict(os.environ))
        wrapped = boxhost.wrap(home, lib, settings, line, door)
    except (OSError, ValueError, boxhost.HostError) as e:
        sys.stderr.write(f"looop: the sandbox cannot be set up: {e}\n")
        return 1
    os.execv("/bin/sh", ["/bin/sh", "-c", boxhost.as_exec(wrapped)])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
