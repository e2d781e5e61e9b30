"""What `pip install looop` brings (issue 67): distributions and their size on disk.

The project is installed with pip into an empty target directory, once as users install it
and once with every extra; counted: the `*.dist-info` directories (looop's own included) and
the bytes of every file installed, byte-compiled as pip does (`du --apparent-size`: the files'
own sizes, not the filesystem's 4 KiB blocks). pip's cache makes a second run quick; the first
downloads the wheels.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MOST_DISTS, MOST_MIB = 25, 45.0


def _install(target: Path, spec: str) -> tuple[int, float]:
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--compile", "--target", str(target), spec],
        check=True,
        timeout=900,
    )
    dists = sum(1 for p in target.iterdir() if p.name.endswith(".dist-info"))
    size = sum((Path(d) / f).lstat().st_size for d, _, files in os.walk(target) for f in files)
    return dists, size / 2**20


def run() -> list[dict[str, object]]:
    with tempfile.TemporaryDirectory() as tmp:
        dists, mib = _install(Path(tmp) / "default", str(ROOT))
        all_dists, all_mib = _install(Path(tmp) / "extras", f"{ROOT}[k8s,mcp,notify]")
    note = (
        "install: `pip install --target` into an empty directory, byte-compiled; size = the "
        f"files' bytes. With every extra (k8s, mcp, notify): {all_dists} distributions, "
        f"{all_mib:.1f} MiB"
    )
    return [
        {
            "name": "pip install looop: distributions",
            "value": dists,
            "unit": "",
            "target": f"<= {MOST_DISTS}",
            "ok": dists <= MOST_DISTS,
            "note": note,
        },
        {
            "name": "pip install looop: size",
            "value": round(mib, 1),
            "unit": "MiB",
            "target": f"<= {MOST_MIB:.0f} MiB",
            "ok": mib <= MOST_MIB,
        },
    ]
