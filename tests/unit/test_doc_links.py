"""The docs hold together: every link in the README and the docs reaches a file of this
repository (and a heading there, when it names one), every repository path they cite exists,
and the README leads with what looop is and how to start — the developer's tiers and
timings live in docs/DEVELOPING.md, one link away."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
OURS = re.compile(r"https://github\.com/looop-dev/looop/(?:blob|tree|raw)/main/(.+)")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
# a path from the repository's root, cited in prose or code: docs/X.md, tests/unit/y.py, …
CITED = re.compile(r"(?<![\w/.~-])((?:docs|tests|bench|tools|deploy|src)/[\w./-]*\w\.\w+)")


def _docs() -> list[Path]:
    found = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return found + sorted((ROOT / "tests").rglob("README.md"))


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _prose(doc: Path) -> str:
    """The doc without its code blocks (a `# comment` there is no heading, a link no link)."""
    return re.sub(r"^```.*?^```", "", doc.read_text(), flags=re.S | re.M)


def _anchors(doc: Path) -> set[str]:
    anchors: set[str] = set()
    counts: dict[str, int] = {}
    for m in re.finditer(r"^#{1,6}\s+(.+?)\s*$", _prose(doc), re.M):
        slug = _slug(m.group(1))
        n = counts.get(slug, 0)
        counts[slug] = n + 1
        anchors.add(slug if n == 0 else f"{slug}-{n}")  # a repeated heading gets -1, -2, …
    return anchors


def _broken(doc: Path) -> list[str]:
    text = _prose(doc)
    bad: list[str] = []
    for target in LINK.findall(text):
        ours = OURS.match(target)  # the README's links, absolute so that they work on PyPI
        if re.match(r"[a-z][a-z0-9+.-]*:", target) and not ours:  # https:, mailto: …
            continue
        path, _, anchor = (ours[1] if ours else target).partition("#")
        to = (ROOT / path if ours else doc.parent / path).resolve() if path else doc
        if not to.resolve().is_relative_to(ROOT):
            bad.append(f"{target} (outside the repository)")
        elif not to.exists():
            bad.append(f"{target} (no such file)")
        elif anchor and to.suffix == ".md" and anchor not in _anchors(to):
            bad.append(f"{target} (no such heading)")
    return bad


def test_every_link_in_the_docs_reaches_a_file_of_the_repository() -> None:
    broken = {str(d.relative_to(ROOT)): b for d in _docs() if (b := _broken(d))}
    assert broken == {}


def test_the_readmes_links_work_on_pypi_where_no_file_is_beside_it() -> None:
    relative = [t for t in LINK.findall(_prose(ROOT / "README.md")) if not re.match(r"\w+:", t)]
    assert relative == []


def test_every_repository_path_the_docs_cite_exists() -> None:
    missing = {}
    for doc in _docs():
        cited = sorted(set(CITED.findall(doc.read_text())))
        if gone := [p for p in cited if not (ROOT / p).exists()]:
            missing[str(doc.relative_to(ROOT))] = gone
    assert missing == {}


def test_the_readme_says_what_looop_is_before_how_it_is_tested() -> None:
    text = (ROOT / "README.md").read_text()
    lead = text[: text.index("\n## ")]
    assert all(word in lead for word in ("pulse", "agent", "worker", "files"))
    assert not re.search(r"\btiers?\b|xdist|\d+ ?m \d+ ?s", text), "tiers and timings: DEVELOPING"
    assert "make demo" in lead and "make test" in lead  # the two commands stay in sight
    start = text.index("\n## Start")
    assert start < text.index("/docs/img/dashboard.png)") < text.index("\n## A short tour")
    assert "/docs/DEVELOPING.md)" in text
    developing = (ROOT / "docs" / "DEVELOPING.md").read_text()
    assert all(t in developing for t in ("`unit`", "`realcli`", "make check", ".ci/run"))


def test_the_dashboard_picture_is_a_small_png() -> None:
    picture = ROOT / "docs" / "img" / "dashboard.png"
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert picture.stat().st_size < 200_000  # the README's first screen loads fast
