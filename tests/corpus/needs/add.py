"""Adds newly recorded screens to the corpus with the labels a person gave them.

    python -m tests.corpus.needs.add RECORDED LABELS

RECORDED: a directory the recorder wrote into (`LOOOP_RECORD_NEEDS_TO=RECORDED`), with
<cli>/<n>.txt and <n>.how; LABELS: a JSON file {cli: {"<n>.txt": label or [label, scene]}}
written by looking at each screen. A screen not named in LABELS is left out (thinned: a
spinner frame like the one before it). Each added screen takes the next free number in
tests/corpus/needs/<cli>/; labels.json gains its label and scene (score.SCENES), and for a
custom screen what the kernel said (RECORDED/kernel.json, record_custom.py)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from tests.corpus.needs.score import HERE, LABELS, SCENES, last_number


def add(recorded: Path, given: dict[str, dict[str, object]]) -> dict[str, int]:
    """Screens added per CLI."""
    added: dict[str, int] = {}
    said_by = recorded / "kernel.json"
    kernel = json.loads(said_by.read_text()) if said_by.exists() else {}
    for cli, screens in sorted(given.items()):
        book_path = HERE / cli / "labels.json"
        book = json.loads(book_path.read_text())
        scenes = book.setdefault("scenes", {})
        n = last_number(HERE / cli)
        for name, said in sorted(screens.items()):
            label, scene = (said, None) if isinstance(said, str) else tuple(said)  # type: ignore[arg-type]
            if label not in LABELS or scene not in (None, *SCENES):
                raise SystemExit(f"{cli}/{name}: label {label!r} scene {scene!r}: not a known one")
            n += 1
            new = f"{n:03d}.txt"
            shutil.copyfile(recorded / cli / name, HERE / cli / new)
            shutil.copyfile(
                recorded / cli / name.replace(".txt", ".how"), HERE / cli / f"{n:03d}.how"
            )
            book["screens"][new] = label
            if scene is not None:
                scenes[new] = scene
            if name in kernel:
                book.setdefault("kernel", {})[new] = kernel[name]
        book_path.write_text(json.dumps(book, indent=1, ensure_ascii=False) + "\n")
        added[cli] = len(screens)
    return added


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m tests.corpus.needs.add RECORDED LABELS.json")
    print(add(Path(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text())))
