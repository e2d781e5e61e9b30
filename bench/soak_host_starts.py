"""The session host's memory per worker started: does a host that forks and sees end many
workers stay flat?

`python bench/soak_host_starts.py [STARTS]` (default 200): a throwaway home with one idle
worker kept for the whole run (its host lives while a session of its home does), then STARTS
workers started and killed one after another through the CLI, as a human or the pulse does.
Every 20 starts it prints the host's RSS (and its private dirty pages: what it did not share
with its forks), and at the end the slope per worker started over the second half.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from soak_memory import classify, rss_kb

LOOOP = str(Path(sys.executable).parent / "looop")
EVERY = 20


def private_kb(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    return sum(
        int(line.split()[1])
        for line in text.splitlines()
        if line.startswith(("Private_Dirty:", "Private_Clean:"))
    )


def slope(xs: list[int], ys: list[int]) -> float:
    half = len(xs) // 2
    xs, ys = xs[half:], ys[half:]
    if len(xs) < 3:
        return 0.0
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den


def main() -> int:
    starts = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    root = Path(tempfile.mkdtemp(prefix="looop-hoststarts-"))
    data = root / "data"
    data.mkdir()
    cfg = {"runners": {"x": {"tick": "true", "worker": "sleep 1000000"}}, "default": "x"}
    (data / "config.json").write_text(json.dumps(cfg))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root),
        "LANG": "C.UTF-8",
        "LOOOP_DATA_DIR": str(data),
        "LOOOP_MAX_WORKERS": "10",
    }

    def looop(*args: str) -> None:
        r = subprocess.run([LOOOP, *args], env=env, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise SystemExit(f"looop {' '.join(args)}: {r.stderr.strip()}")

    def start(name: str) -> None:
        cmd = "sleep 1000000 # {{prompt_file}}"
        looop("worker", "start", name, "x", "--no-sandbox", "--command", cmd)

    start("anchor")
    hosts = classify(data).get("host", [])
    if len(hosts) != 1:
        raise SystemExit(f"expected one session host, found {hosts}")
    host = hosts[0]
    xs: list[int] = []
    rss: list[int] = []
    priv: list[int] = []
    try:
        for i in range(1, starts + 1):
            start(f"w{i}")
            looop("worker", "kill", f"w{i}")
            if i % EVERY == 0:
                xs.append(i)
                rss.append(rss_kb(host))
                priv.append(private_kb(host))
                print(f"{i} starts: host rss {rss[-1]} kB, private {priv[-1]} kB", flush=True)
    finally:
        looop("worker", "kill", "anchor")
    print(f"host {host}: per worker started, over the second half:")
    print(f"  rss      {slope(xs, rss):+.2f} kB")
    print(f"  private  {slope(xs, priv):+.2f} kB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
