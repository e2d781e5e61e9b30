"""`looop host install NAME`: looop in a user-level venv on the host, with no internet there.

The home builds this project's own wheel (pip + hatchling, from the source tree it runs from,
or `--wheel FILE`), downloads the wheels of its dependencies for the host's Python through
the home's own pip configuration (its index or mirror), copies them over the host's SSH
master as one tar stream, and the host's pip installs them with `--no-index`."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

from looop.home import jsonio
from looop.remote.hosts import HostError
from looop.remote.ssh.boxed import SRT_DIR
from looop.remote.ssh.link import VENV, Link, Unreachable

STAGE = ".cache/looop-install"  # on the host, under $HOME; removed after the install


def _pip(args: list[str], what: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--quiet", *args], capture_output=True, text=True
    )
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["?"])[-1]
        raise HostError(f"cannot {what}: {tail}")


class Build:
    """What this looop is: its version and its package's `__init__.py` (cli/hosts.py)."""

    def __init__(self, version: str, package_file: str) -> None:
        self.version = version
        self.package_file = package_file


def wheels(data: Path, pyver: str, wheel: Path | None, build: Build) -> Path:
    """A folder holding looop's wheel and its dependencies' for Python `pyver` (cached)."""
    out = data / "hosts" / ".wheels" / f"{build.version}-py{pyver}"
    own = sorted(out.glob("looop-*.whl")) if out.is_dir() else []
    if own and wheel is None and (out / ".complete").exists() and pip_wheel(out) is not None:
        return out
    out.mkdir(parents=True, exist_ok=True)
    if wheel is None:
        root = Path(build.package_file).resolve().parents[2]  # an editable install's tree
        if not (root / "pyproject.toml").is_file():
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
        ["download", "-d", str(out), *(target if pyver != here else []), str(own[-1]), "pip"],
        "fetch the wheels of looop's dependencies (the home's pip index must reach them)",
    )
    (out / ".complete").write_text("ok\n")
    return out


def pip_wheel(folder: Path) -> Path | None:
    """pip's own wheel among the host's: the host runs pip from it, so its venv is made
    without pip (ensurepip costs about 6 s of CPU a host) and none is left in it."""
    found = sorted(folder.glob("pip-*.whl"))
    return found[-1] if found else None


def _tar(folder: Path, wheel: Path | None = None) -> bytes:
    """The wheels in `folder`, looop's own replaced by `wheel` when one is given."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for f in sorted(folder.glob("*.whl")):
            if wheel is None or not f.name.startswith("looop-"):
                tar.add(f, arcname=f.name)
        if wheel is not None:
            tar.add(wheel, arcname=wheel.name)
    return buf.getvalue()


def _remote(lk: Link, script: str, args: list[str], data: bytes | None = None) -> str:
    lk.ensure()
    argv = lk.remote_argv(args, script=script)
    done = subprocess.run(argv, input=data, capture_output=True, env=lk.env, timeout=600)
    if done.returncode == 255:
        raise Unreachable(f"host {lk.host.name} does not answer")
    if done.returncode != 0:
        tail = (done.stderr.decode(errors="replace").strip().splitlines() or ["?"])[-1]
        raise HostError(f"host {lk.host.name}: install failed: {tail}")
    return done.stdout.decode(errors="replace")


def install(
    lk: Link,
    wheel: Path | None,
    build: Build,
    srt_path: str | None = None,
    say: Callable[[str], None] = lambda step: None,
) -> tuple[str, list[str]]:
    """looop in the host's venv, then what srt needs there (sandbox_parts, over the same
    master): where it went, and one line per sandbox part done or left. `say` hears each
    step as it begins: the whole can take minutes."""
    say(f"asking {lk.host.name} for its Python")
    pyver = _remote(
        lk,
        'command -v python3 >/dev/null || { echo "no python3 on this host" >&2; exit 1; }; '
        "python3 -c \"import sys, venv; print(*sys.version_info[:2], sep='.')\"",
        [],
    ).strip()
    if not pyver.startswith("3.") or int(pyver.split(".")[1]) < 11:
        raise HostError(f"host {lk.host.name} has Python {pyver}; looop needs 3.11 or newer")
    say(f"gathering the wheels for Python {pyver} (a first install downloads them)")
    folder = wheels(lk.data, pyver, wheel, build)
    own = (sorted(folder.glob("looop-*.whl")) if wheel is None else [wheel])[-1]
    pip = pip_wheel(folder)
    if pip is None:
        raise HostError(f"no pip wheel in {folder}: remove that folder and install again")
    say(f"copying the wheels to {lk.host.name}")
    _remote(
        lk,
        'set -e; s="$HOME/$1"; rm -rf "$s"; mkdir -p "$s"; tar -C "$s" -xf -',
        [STAGE],
        _tar(folder, wheel),
    )
    say(f"installing into ~/{VENV} there")
    _remote(
        lk,
        # pip runs from its wheel under the venv's python (so it installs there): the venv
        # needs no pip of its own. A new venv takes everything in one pip run; an old one first
        # has looop itself replaced (the same version rebuilt is not an upgrade)
        'set -e; s="$HOME/$1"; v="$HOME/$2"; w="$s/$4/pip"; p() { "$v/bin/python" "$w" install '
        '--quiet --disable-pip-version-check --no-index --find-links "$s" "$@"; }; '
        'if [ -x "$v/bin/python" ]; then p --force-reinstall --no-deps "$s/$3"; '
        'else python3 -m venv --without-pip "$v"; fi; p "$s/$3"; rm -rf "$s"; '
        '"$v/bin/looop" version',
        [STAGE, VENV, own.name, pip.name],
    )
    say("checking what the sandbox needs there")
    said = sandbox_parts(lk, srt_path)
    lk.stop_master()  # the next verb connects afresh and opens the contract channel
    return f"~/{VENV}", said


# -- the sandbox's parts: srt (as the home has it), and Debian's bubblewrap, socat, ripgrep


_SURVEY = (
    'm="$HOME/$1"; '
    'printf "srt=%s\\n" "$(command -v srt || true)"; '
    'if [ -f "$m/package.json" ]; then '
    'printf "mine=%s\\n" "$(sed -n \'s/.*"version": *"\\([^"]*\\)".*/\\1/p\' "$m/package.json" '
    '| head -n 1)"; fi; '
    'for p in bwrap socat rg node; do command -v $p >/dev/null 2>&1 || echo "no=$p"; done; '
    'if [ "$(id -u)" = 0 ]; then echo "root=1"; '
    'elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then echo "sudo=1"; fi; '
    'command -v apt-get >/dev/null 2>&1 && echo "apt=1"; true'
)
_APT = {"bwrap": "bubblewrap", "socat": "socat", "rg": "ripgrep"}


def srt_package(srt_path: str | None) -> tuple[Path, str] | None:
    """The home's srt npm package folder (dependencies inside) and its version, from the
    path of its `srt` command; None when the home has none to give."""

    if srt_path is None:
        return None
    root = Path(srt_path).resolve().parent.parent
    try:
        meta = jsonio.loads((root / "package.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("name") != "@anthropic-ai/sandbox-runtime":
        return None
    return root, str(meta.get("version", "?"))


def _tar_tree(root: Path) -> bytes:
    """The package with its dependencies inside: a global npm install nests them in its own
    node_modules; a project's install hoists them beside it (then they are taken from there)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tar:
        tar.add(root, arcname=".")
        hoisted = root.parent.parent  # node_modules/@anthropic-ai/sandbox-runtime
        if not (root / "node_modules").is_dir() and hoisted.name == "node_modules":
            for dep in sorted(hoisted.iterdir()):
                if dep.name.startswith(".") or dep == root.parent:
                    continue
                tar.add(dep, arcname=f"node_modules/{dep.name}")
    return buf.getvalue()


def sandbox_parts(lk: Link, srt_path: str | None) -> list[str]:
    """Bring what the host lacks for srt: the home's srt package (when the host has no srt of
    that version: none on its PATH, none installed by looop), and Debian's bubblewrap, socat
    and ripgrep when the host can apt them (root, or sudo without a password). One line per
    thing done or left undone, saying how to do it by hand."""

    lines = (line.partition("=") for line in _remote(lk, _SURVEY, [SRT_DIR]).splitlines())
    said = dict((f"no-{v}", "1") if k == "no" else (k, v) for k, _, v in lines)
    out: list[str] = []
    pkg = srt_package(srt_path)
    if said.get("srt") and not said.get("mine"):
        out.append(f"srt: the host's own ({said['srt']})")
    elif pkg is not None and said.get("mine") == pkg[1]:
        out.append(f"srt: {pkg[1]} already in ~/{SRT_DIR}")
    elif pkg is not None:
        _remote(
            lk,
            'set -e; m="$HOME/$1"; rm -rf "$m.new"; mkdir -p "$m.new"; tar -C "$m.new" -xzf -; '
            'rm -rf "$m"; mv "$m.new" "$m"; chmod 755 "$m/dist/cli.js"',
            [SRT_DIR],
            _tar_tree(pkg[0]),
        )
        out.append(f"srt: {pkg[1]} copied from this machine to ~/{SRT_DIR}")
    else:
        out.append(
            "srt: not brought (this machine has none to copy) — on the host: "
            "npm install -g @anthropic-ai/sandbox-runtime"
        )
    want = [_APT[p] for p in _APT if said.get(f"no-{p}")]
    if want and said.get("apt") and (said.get("root") or said.get("sudo")):
        pre = "" if said.get("root") else "sudo -n "
        cmd = f"{pre}env DEBIAN_FRONTEND=noninteractive apt-get install -y -q {' '.join(want)}"
        try:
            _remote(lk, cmd + " >/dev/null", [])
            out.append(f"installed {', '.join(want)} with apt-get")
        except HostError as e:
            out.append(f"could not apt-get {' '.join(want)} ({e}) — install them on the host")
    elif want:
        out.append(
            f"missing {', '.join(want)}: this login cannot apt-get them (no root, no "
            f"password-less sudo) — on the host, as root: apt-get install {' '.join(want)}"
        )
    if said.get("no-node"):
        out.append("missing node (srt runs on Node.js 22 or newer) — install it on the host")
    return out
