"""A review read back from its JSON (`Review.to_json`): what a host's satellite answers for a
worker whose checkouts are there. Read fail-closed — a field of the wrong kind is one line,
never a guess — and only the change's own parts: the rounds, the proposal and the verify
are the home's (workers/review.py reads them here)."""

from __future__ import annotations

from typing import Any

from looop.home.errors import LooopError
from looop.workers.review import RepoChange, Review, Verify, first_of
from looop.workers.reviewgit import Commit, FileChange, Hunk


class BadReview(LooopError):
    pass


def _str(obj: dict[str, Any], key: str) -> str:
    got = obj.get(key, "")
    if not isinstance(got, str):
        raise BadReview(f"the review's {key!r} is not text")
    return got


def _int(obj: dict[str, Any], key: str) -> int:
    got = obj.get(key, 0)
    if isinstance(got, bool) or not isinstance(got, int):
        raise BadReview(f"the review's {key!r} is not a whole number")
    return got


def _list(obj: dict[str, Any], key: str) -> list[dict[str, Any]]:
    got = obj.get(key) or []  # a tuple: a review's to_json() read in this process
    if not isinstance(got, list | tuple) or not all(isinstance(x, dict) for x in got):
        raise BadReview(f"the review's {key!r} is not a list of objects")
    return list(got)


def _maybe_bool(obj: dict[str, Any], key: str) -> bool | None:
    got = obj.get(key)
    return got if isinstance(got, bool) else None


def commits_of(raw: list[dict[str, Any]]) -> tuple[Commit, ...]:
    return tuple(Commit(_str(c, "sha"), _str(c, "subject")) for c in raw)


def _hunk(h: dict[str, Any]) -> Hunk:
    lines = h.get("lines") or []
    if not isinstance(lines, list | tuple) or not all(isinstance(x, str) for x in lines):
        raise BadReview("a hunk's 'lines' is not a list of text")
    return Hunk(_str(h, "header"), _int(h, "new_start"), _int(h, "new_count"), tuple(lines))


def _file(f: dict[str, Any]) -> FileChange:
    return FileChange(
        path=_str(f, "path"),
        status=_str(f, "status"),
        added=_int(f, "added"),
        removed=_int(f, "removed"),
        hunks=tuple(_hunk(h) for h in _list(f, "hunks")),
        cut=f.get("cut") is True,
        note=_str(f, "note"),
    )


def _repo(obj: dict[str, Any]) -> RepoChange:
    return RepoChange(
        name=_str(obj, "name"),
        repo=_str(obj, "repo"),
        branch=_str(obj, "branch"),
        base=_str(obj, "base"),
        tip=_str(obj, "tip"),
        commits=commits_of(_list(obj, "commits")),
        files=tuple(_file(f) for f in _list(obj, "files")),
        uncommitted=_maybe_bool(obj, "uncommitted"),
        moved=obj.get("moved") is True,
    )


def _verify(obj: Any) -> Verify:
    if not isinstance(obj, dict):
        return Verify("none")
    code = obj.get("exit_code")
    return Verify(
        _str(obj, "state") or "none",
        _str(obj, "cmd"),
        code if isinstance(code, int) and not isinstance(code, bool) else None,
        obj.get("timed_out") is True,
        _str(obj, "output"),
    )


def review_from_json(obj: Any) -> Review:
    """The change a review JSON holds (rounds, since_last and proposal left empty)."""
    if not isinstance(obj, dict):
        raise BadReview("the review is not a JSON object")
    first = _repo(obj)
    repos = tuple(_repo(r) for r in _list(obj, "repos")) or (first,)
    return Review(
        wid=_str(obj, "wid"),
        **first_of(first),
        verify=_verify(obj.get("verify")),
        summary=_str(obj, "summary"),
        summary_from=_str(obj, "summary_from"),
        rounds=(),
        since_last=(),
        repos=repos,
    )
