"""`looop host install NAME`: looop in a user-level venv on the host, with no internet there.

The home builds this project's own wheel (pip + hatchling, from the source tree it runs from,
or `--wheel FILE`), downloads the wheels of its dependencies for the host's Python through
the home's own pip configuration (its index or mirror), copies them over the host's SSH
master as one tar stream, and the host's pip installs them with `--no-index`."""

from __future__ import annotations

import io
import shlex
import subprocess
import sys
import tarfile
from pathlib import Path

from looop.workers.ssh.hosts import HostError
from looop.workers.ssh.link import VENV, Link, Unreachable

STAGE = ".cache/looop-install"  # on the host, under $HOME; removed after the install


def _pip(args: list[str], what: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--quiet", *args], capture_output=True, text=True
    )
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["?"])[-1]
        raise HostError(f"cannot {what}: {tail}")


def source_root(package_file: str) -> Path | None:
    """This project's source tree, when looop runs from one (an editable install)."""
    root = Path(package_file).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() else None


class Build:
    """What this looop is: its version and its package's `__init__.py` (cli/hosts.py)."""

    def __init__(self, version: str, package_file: str) -> None:
        self.version = version
        self.package_file = package_file


def wheels(data: Path, pyver: str, wheel: Path | None, build: Build) -> Path:
    """A folder holding looop's wheel and its dependencies' for Python `pyver` (cached)."""
    out = data / "hosts" / ".wheels" / f"{build.version}-py{pyver}"
    own = sorted(out.glob("looop-*.whl")) if out.is_dir() else []
    if own and wheel is None and (out / ".complete").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    if wheel is None:
        root = source_root(build.package_file)
        if root is None:
            raise HostError(
                "this looop was not installed from a source tree: pass its wheel "
                "(`looop host install NAME --wheel looop-….whl`)"
            )
        _pip(["wheel", "--no-deps", "-w", str(out), str(root)], "build looop's wheel")
        own = sorted(out.glob("looop-*.whl"))
    else:
        if not wheel.is_file() or not wheel.name.startswith("looop-"):
            raise HostError(f"{wheel} is not a looop wheel")
        own = [wheel]
    target = ["--python-version", pyver, "--only-binary=:all:"]
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    _pip(
        ["download", "-d", str(out), *(target if pyver != here else []), str(own[-1])],
        "fetch the wheels of looop's dependencies (the home's pip index must reach them)",
    )
    (out / ".complete").write_text("ok\n")
    return out


def _tar(folder: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for f in sorted(folder.glob("*.whl")):
            tar.add(f, arcname=f.name)
    return buf.getvalue()


def _remote(lk: Link, script: str, args: list[str], data: bytes | None = None) -> str:
    lk.ensure()
    line = shlex.join(["sh", "-c", script, "looop-install", *args])
    argv = [*lk.base(), "-o", "ControlMaster=no", "-T", "--", lk.host.host, line]
    done = subprocess.run(argv, input=data, capture_output=True, env=lk.env, timeout=600)
    if done.returncode == 255:
        raise Unreachable(f"host {lk.host.name} does not answer")
    if done.returncode != 0:
        tail = (done.stderr.decode(errors="replace").strip().splitlines() or ["?"])[-1]
        raise HostError(f"host {lk.host.name}: install failed: {tail}")
    return done.stdout.decode(errors="replace")


def install(lk: Link, wheel: Path | None, build: Build) -> str:
    pyver = _remote(
        lk,
        'command -v python3 >/dev/null || { echo "no python3 on this host" >&2; exit 1; }; '
        "python3 -c \"import sys, venv, ensurepip; print(*sys.version_info[:2], sep='.')\"",
        [],
    ).strip()
    if not pyver.startswith("3.") or int(pyver.split(".")[1]) < 11:
        raise HostError(f"host {lk.host.name} has Python {pyver}; looop needs 3.11 or newer")
    folder = wheels(lk.data, pyver, wheel, build)
    own = (sorted(folder.glob("looop-*.whl")) if wheel is None else [wheel])[-1]
    _remote(
        lk,
        'set -e; s="$HOME/$1"; rm -rf "$s"; mkdir -p "$s"; tar -C "$s" -xf -',
        [STAGE],
        _tar(folder) if wheel is None else _tar_with(folder, wheel),
    )
    _remote(
        lk,
        'set -e; s="$HOME/$1"; v="$HOME/$2"; [ -x "$v/bin/python" ] || python3 -m venv "$v"; '
        '"$v/bin/python" -m pip install --quiet --no-index --find-links "$s" '
        '--force-reinstall --no-deps "$s/$3"; '
        '"$v/bin/python" -m pip install --quiet --no-index --find-links "$s" "$s/$3"; '
        'rm -rf "$s"; "$v/bin/looop" version',
        [STAGE, VENV, own.name],
    )
    lk.stop_master()  # the next verb connects afresh and opens the contract channel
    return f"~/{VENV}"


def _tar_with(folder: Path, wheel: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for f in sorted(folder.glob("*.whl")):
            if not f.name.startswith("looop-"):
                tar.add(f, arcname=f.name)
        tar.add(wheel, arcname=wheel.name)
    return buf.getvalue()
