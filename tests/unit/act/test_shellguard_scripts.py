"""What the tripwire cannot read (act/shellguard/scripts.py): a #! naming anything but a plain
shell in a system folder, and code handed inline to another language inside shell text."""

from __future__ import annotations

import pytest

from looop.act.shellguard import unreadable_line, unreadable_script

READ = [
    "#!/bin/bash\necho '{}'\n",
    "#!/bin/sh -eu\necho '{}'\n",
    "#! /bin/bash\necho\n",
    "#!/usr/bin/env bash\necho\n",
    "#!/usr/bin/env -S bash -e\necho\n",
    "#!/usr/bin/env -S -i bash\necho\n",
    "#!/bin/busybox sh\necho\n",
    "echo '{}'  # no #!: sensors/ runs it under bash\n",
    "#!/bin/sh\npython3 check.py --flag\n",  # a script on disk: the human's own
    "#!/bin/sh\npython3 -m json.tool data.json\n",
    "#!/bin/sh\npytest -q && make test\n",
]

NOT_READ = [
    ("#!/usr/bin/env python3\nprint(1)\n", "python3 is not a shell"),
    ("#!/usr/bin/python3\nprint(1)\n", "python3 is not a shell"),
    ("#!/usr/bin/env -S python3 -u\nprint(1)\n", "python3 is not a shell"),
    ("#!/usr/bin/env -S A=1 python3\nprint(1)\n", "python3 is not a shell"),
    ("#!/usr/bin/env node\n", "node is not a shell"),
    ("#!/usr/bin/env -S node --no-warnings\n", "node is not a shell"),
    ("#!/usr/bin/perl -w\n", "perl is not a shell"),
    ("#!/bin/zsh\n", "zsh is not a shell"),
    ("#!/usr/bin/env -S 'bash'\n", "quotes or escapes"),
    ("#!/usr/bin/env -S bash /tmp/other\n", "shell options it cannot follow"),
    ("#!/usr/bin/env -i bash\n", "env options"),
    ("#!/opt/evil/bash\n", "not in /bin"),
    ("#!bash\n", "not in /bin"),
    ("#!/usr/bin/../../tmp/bash\n", "not in /bin"),
    ("#!/bin/bash -c\n", "shell options it cannot follow"),
    ("#!/bin/busybox awk -f\n", "not a shell"),
    ("#!/bin/bash\r\necho\n", "not a shell"),  # the kernel looks for `bash\r`
    ("#!/bin/bash\npython3 -c 'import os'\n", "inline python3 code"),
    ("#!/bin/sh\n/usr/bin/python3 -Sc 'x'\n", "inline python3 code"),
    ("#!/bin/sh\npython3 -W ignore -c 'x'\n", "inline python3 code"),
    ("#!/bin/sh\nexec python3 - <<'EOF'\nprint(1)\nEOF\n", "from stdin"),
    ("#!/bin/sh\necho 'print(1)' | python3\n", "from stdin"),
    ("#!/bin/sh\nnode -e 'x'\n", "inline node code"),
    ("#!/bin/sh\nnode --eval 'x'\n", "inline node code"),
    ("#!/bin/sh\ndeno eval 'x'\n", "inline deno code"),
    ("#!/bin/sh\nperl -ne 'print' f\n", "inline perl code"),
    ("#!/bin/sh\nruby -e 'x'\n", "inline ruby code"),
    ("#!/bin/sh\nphp -r 'x'\n", "inline php code"),
    ("#!/bin/sh\nsh -c \"python3 -c 'x'\"\n", "inline python3 code"),
    ("#!/bin/sh\nx=$(python3 -c 'print(1)')\n", "inline python3 code"),
    ("#!/bin/sh\nenv -S 'python3 -c x'\n", "inline python3 code"),
    ("#!/bin/sh\nnice -n 5 timeout 3 python3 -c x\n", "inline python3 code"),
    ("#!/bin/sh\nbash <<'E'\npython3 -c x\nE\n", "inline python3 code"),
    ('#!/bin/sh\neval "python3 -c x"\n', "inline python3 code"),
    ("#!/bin/sh\nfind . -exec python3 -c x \\;\n", "inline python3 code"),
    ("#!/bin/sh\nbusybox python3\n", "from stdin"),
]


@pytest.mark.parametrize("script", READ)
def test_shell_the_tripwire_reads_is_readable(script: str) -> None:
    assert unreadable_script(script) is None


@pytest.mark.parametrize(("script", "why"), NOT_READ)
def test_what_the_tripwire_cannot_read_is_named(script: str, why: str) -> None:
    got = unreadable_script(script)
    assert got is not None and why in got, got


def test_a_verify_line_with_inline_code_is_not_readable() -> None:
    assert unreadable_line("test -f reports/x.md && grep -q ok reports/x.md") is None
    got = unreadable_line("python3 -c \"import os; os.system('x')\"")
    assert got is not None and "inline python3 code" in got


def test_text_too_long_or_unbalanced_is_still_read_or_refused() -> None:
    assert unreadable_line("x" * (256 * 1024 + 1)) is not None
    for broken in ("python3 -c 'x", "$(python3 -c x", "echo `node -e x"):
        got = unreadable_line(broken)
        assert got is not None and "inline" in got, broken
