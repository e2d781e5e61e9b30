"""A worker's change read where its checkouts are: its diff (`looop worker diff`, bounded) and
its review (`looop review --json`). This machine's engine (workers/backend.LocalBackend)
answers both from here, an SSH host's satellite or a pod the diff (their reviews:
workers/reviewfar.py); a face asks its worker's Backend and never looks for where the worker
runs."""

from __future__ import annotations

import subprocess
from typing import Any

from looop.core.context import Ctx
from looop.home.errors import LooopError
from looop.workers import treework
from looop.workers.errors import ChangeError, Unreached
from looop.workers.review import review

MAX_DIFF = 512 << 10  # a worker's diff shown from its start up to this
GIT_TIMEOUT_S = 30


def diff_of(ctx: Ctx, wid: str) -> dict[str, Any]:
    """{"id", "diff", "cut"}: its commits since its base, its edits and new files, the text up
    to MAX_DIFF (`cut`: there was more)."""
    try:
        runs = treework.diff_runs(ctx, wid)
    except LooopError as e:
        raise ChangeError(str(e)) from None
    parts: list[str] = []
    size = 0
    for argv, env in runs:
        try:
            done = subprocess.run(argv, env=env, capture_output=True, timeout=GIT_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise ChangeError(f"git diff did not run: {e}") from None
        if done.returncode > 1:  # 1 is `git diff --no-index` saying the files differ
            why = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["?"]
            raise ChangeError(f"git diff failed: {why[0]}")
        parts.append(done.stdout.decode("utf-8", "replace"))
        size += len(done.stdout)
        if size > MAX_DIFF:
            break
    text = "".join(parts)
    return {"id": wid, "diff": text[:MAX_DIFF], "cut": len(text) > MAX_DIFF}


def review_of(ctx: Ctx, wid: str) -> dict[str, Any]:
    """`looop review ID --json`: commits, files with hunks, verify, summary, comment rounds."""
    try:
        return review(ctx, wid).to_json()
    except Unreached:  # no such worker, or its change unreadable: said by its kind
        raise
    except LooopError as e:
        raise ChangeError(str(e)) from None


def far_diff(got: dict[str, Any], wid: str, where: str) -> dict[str, Any]:
    """An answer to a diff from `where` ("host h1", a pod), checked: its text (bounded as
    here) and whether it was cut."""
    text = got.get("diff")
    if not isinstance(text, str):
        raise ChangeError(f"{where} answered worker {wid}'s diff without one: retry")
    return {
        "id": wid,
        "diff": text[:MAX_DIFF],
        "cut": got.get("cut") is True or len(text) > MAX_DIFF,
    }
