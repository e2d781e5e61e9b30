"""A box's command line, as its session stores it: `python -m looop.core.sbxrun LIB BASE DATA
SETTINGS LINE` asks the home's sandbox host (core/sbxhost.py) to wrap LINE under the settings
file, then becomes bubblewrap's line (exec: nothing of it stays). The wrap happens at each run,
as `srt -s SETTINGS -c LINE` did, so a restarted session gets the host and bridge alive now —
a stored bubblewrap line would name a bridge that died with an idle host."""

from __future__ import annotations

import os
import sys

from looop.core import sbxhost
from looop.hot import ljson


def main(argv: list[str]) -> int:
    if len(argv) != 5:
        sys.stderr.write("usage: python -m looop.core.sbxrun LIB BASE DATA SETTINGS LINE\n")
        return 2
    lib, base, data, path, line = argv
    try:
        with open(path, encoding="utf-8") as f:
            settings = ljson.loads(f.read())
        wrapped = sbxhost.wrap(sbxhost.Home(base, data, dict(os.environ)), lib, settings, line)
    except (OSError, ValueError, sbxhost.HostError) as e:
        sys.stderr.write(f"looop: the sandbox cannot be set up: {e}\n")
        return 1
    os.execv("/bin/sh", ["/bin/sh", "-c", sbxhost.as_exec(wrapped)])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
