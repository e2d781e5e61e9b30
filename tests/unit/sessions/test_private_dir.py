"""The runtime dir a user names before it exists (LOOOP_RUNTIME_DIR=/run/user/1000/looop) is
made, private, rather than failing a worker start with a bare "No such file or directory"."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from looop.home.sessionfiles import ensure_private_dir


def test_a_private_dir_under_folders_not_made_yet_is_made_0700(tmp_path: Path) -> None:
    want = tmp_path / "run" / "user" / "looop-0"
    ensure_private_dir(want)
    st = os.lstat(want)
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700
    ensure_private_dir(want)  # and again: already there is fine
