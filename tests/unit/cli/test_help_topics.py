"""`looop help TOPIC` prints that section of the manual, in any case, for every section the
README, the docs and the manual itself point to (`see SANDBOX`, `looop help` (CONFIG, …));
`help config` is the CONFIG section, never the completion verb's old spelling; an unknown
topic is one line that lists the topics."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from looop.cli.reads import manual_sections
from looop.cli.root import cli
from looop.seed import package_text

ROOT = Path(__file__).resolve().parents[3]
# where the docs send a reader: "see SANDBOX", "(see HOSTS, KUBERNETES)", "under DECISIONS in
# `looop help`", "`looop help` (CONFIG, DECISIONS, SPEND CONTROL)", "WORKERS in `looop help`"
NAMES = r"((?:[A-Z]{3,}(?: [A-Z]{3,})*(?:,\s+)?)+)"
POINTERS = [
    re.compile(rf"\bsee\s+{NAMES}"),
    re.compile(rf"`looop help`\s+\({NAMES}\)"),
    re.compile(rf"{NAMES}\s+in\s+`looop help`"),
]


def _pointed_to() -> set[str]:
    texts = [package_text("manual.md"), (ROOT / "README.md").read_text()]
    texts += [p.read_text() for p in (ROOT / "docs").glob("*.md")]
    names: set[str] = set()
    for text in texts:
        for pointer in POINTERS:
            for m in pointer.finditer(text):
                names |= {n.strip() for n in m.group(1).split(",") if n.strip()}
    return names


def _help(*words: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, ["help", *words], catch_exceptions=False)
    return res.exit_code, res.output


def test_the_docs_point_to_sections_the_manual_has() -> None:
    pointed = _pointed_to()
    # the three, and the manual's own cross references, are among them
    assert {"SANDBOX", "CONFIG", "DECISIONS", "SPEND CONTROL", "WORKTREES"} <= pointed
    known = manual_sections(package_text("manual.md"))
    missing = pointed - set(known)
    assert not missing, f"the docs point to sections the manual lacks: {sorted(missing)}"


@pytest.mark.parametrize("spell", [str.upper, str.lower, str.title])
def test_every_section_prints_alone_in_any_case(
    spell: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOOP_DATA_DIR", str(tmp_path / "data"))
    known = manual_sections(_help()[1])  # the sections of the manual as `looop help` prints it
    assert _pointed_to() <= set(known) and len(known) > 20
    for name, section in known.items():
        code, out = _help(*spell(name).split())  # type: ignore[operator]
        assert code == 0, name
        assert out.startswith(f"{section}\n"), (name, out[:80])
        rest = out[len(section) + 1 :]  # a section that is also a verb: its options after it
        assert rest == "" or rest.startswith(f"\nUsage: looop {name.lower()} "), (name, rest)
        assert len(section.splitlines()) > 1, name
    assert not (tmp_path / "data").exists()  # a read: no data dir made


def test_help_config_is_the_config_section_not_the_completion_verb() -> None:
    code, out = _help("config")
    assert code == 0 and out.startswith("CONFIG")
    assert "LOOOP_CONFIG" in out and "completion" not in out.lower()


def test_a_section_that_is_also_a_verb_shows_both() -> None:
    code, out = _help("asks")
    assert code == 0 and out.startswith("ASKS") and "Usage: looop asks" in out


def test_a_multi_word_section_by_dash_or_words() -> None:
    for words in (["spend", "control"], ["Spend-Control"], ["exit_codes"]):
        code, out = _help(*words)
        assert code == 0 and out.split("\n", 1)[0] in ("SPEND CONTROL", "EXIT CODES"), words


def test_an_unknown_topic_is_one_line_listing_the_topics() -> None:
    code, out = _help("sandbx")
    line = out.strip().splitlines()[-1]  # after click's usage line
    assert code == 2
    assert "did you mean `sandbox`" in line
    for name in ("SANDBOX", "CONFIG", "DECISIONS", "SPEND CONTROL"):
        assert name in line


def test_verb_help_still_walks_verbs() -> None:
    code, out = _help("worker", "start")
    assert code == 0 and out.startswith("Usage: looop worker start")


def test_a_bare_looop_config_points_to_the_config_section() -> None:
    res = CliRunner().invoke(cli, ["config"], catch_exceptions=False)
    assert res.exit_code == 2 and "`looop help config`" in res.output.strip().splitlines()[-1]
    res = CliRunner().invoke(cli, ["config", "zsh"], catch_exceptions=False)
    assert res.exit_code == 0 and "complete" in res.output  # the old spelling still works
