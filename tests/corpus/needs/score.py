"""The needs-input detector scored over the labelled corpus (tests/corpus/needs/<cli>/):
each screen judged with its CLI's profile patterns, the verdict (waits / not) set against the
label a human gave it (labels.json, written before the detector looked).

Positive = the screen waits for a human (an approval prompt, a chooser, an idle input box);
precision = right positives / all positives said, recall = right positives / all labelled.
Beside its label a screen may have a scene (`scenes` in labels.json): `error` (a failing turn's
error or retry is on it) or `long-output` (a long command output or answer fills it).

The `custom` screens (commands no profile knows) are judged by the rule every worker is
judged by when its output goes quiet (home/screenrules.prompt), with what the kernel said of
the terminal's reader when each was recorded (`kernel` in labels.json), or by the text alone."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from looop.home.screenrules import prompt
from looop.workers.needsinput import Rules, judge

HERE = Path(__file__).resolve().parent
CLIS = ("claude", "codex", "pi", "opencode", "gemini")
CUSTOM = "custom"  # screens of commands no runner profile knows
WAITS = ("approval", "idle", "prompt")  # the labels that wait for a human; no other one does
LABELS = ("approval", "idle", "prompt", "busy", "start", "shell")
SCENES = ("error", "long-output")


@dataclass
class Score:
    cli: str
    screens: int = 0
    waiting: int = 0  # labelled as waiting
    hits: int = 0  # said waiting, labelled waiting
    said: int = 0  # said waiting
    wrong: list[str] = field(default_factory=list)  # `<file>: label X, said Y`
    kinds: dict[str, int] = field(default_factory=dict)  # screens per label and per scene

    @property
    def precision(self) -> float:
        return self.hits / self.said if self.said else 1.0

    @property
    def recall(self) -> float:
        return self.hits / self.waiting if self.waiting else 1.0


def labels(cli: str) -> dict[str, str]:
    """File name -> label, as labels.json holds them."""
    got = json.loads((HERE / cli / "labels.json").read_text())
    return {str(k): str(v) for k, v in got["screens"].items()}


def last_number(d: Path) -> int:
    """The highest screen number in a directory (thinned screens leave gaps), 0 if none."""
    return max((int(p.stem) for p in d.glob("*.txt") if p.stem.isdigit()), default=0)


def scenes(cli: str) -> dict[str, str]:
    """File name -> scene, for the screens that have one."""
    got = json.loads((HERE / cli / "labels.json").read_text())
    return {str(k): str(v) for k, v in (got.get("scenes") or {}).items()}


def kernel(cli: str) -> dict[str, bool | None]:
    """File name -> whether the kernel saw the terminal's reader waiting on it (custom/)."""
    got = json.loads((HERE / cli / "labels.json").read_text())
    return {str(k): v for k, v in (got.get("kernel") or {}).items()}


def score(cli: str, rules: Rules | None = None, text_alone: bool = False) -> Score:
    """`custom`: each screen by the generic rule, with the kernel's word unless `text_alone`."""
    rules = rules or Rules()
    out = Score(f"{cli} (text alone)" if text_alone else cli)
    scene, read = scenes(cli), kernel(cli)
    for name, label in sorted(labels(cli).items()):
        for kind in (label, scene.get(name)):
            if kind is not None:
                out.kinds[kind] = out.kinds.get(kind, 0) + 1
        text = (HERE / cli / name).read_text()
        if cli == CUSTOM:
            verdict = prompt(text, None if text_alone else read.get(name))
        else:
            verdict = judge(text, {cli}, rules)
        want = label in WAITS
        out.screens += 1
        out.waiting += want
        out.said += verdict is not None
        out.hits += want and verdict is not None
        if want != (verdict is not None) or (want and not str(verdict).startswith(label)):
            out.wrong.append(f"{cli}/{name}: labelled {label}, said {verdict}")
    return out
