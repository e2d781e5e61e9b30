"""Install the real agent CLIs from the npm registry, once, into a cache inside the repo.

    python -m tests.realcli.install      # what the session fixture does, by hand

The cache directory is named after a hash of the pins, so changing a pin installs afresh and
a second run with the same pins reuses what is there. npm missing is the only reason to skip
the suite; any other failure is an error the test run reports.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

# Exact versions, checked with `npm view <pkg> version`.
PINS: dict[str, str] = {
    "@anthropic-ai/claude-code": "2.1.330",
    "@openai/codex": "0.169.0",
    "@mariozechner/pi-coding-agent": "0.73.1",
    "opencode-ai": "1.18.33",
}

# The binary each package puts in node_modules/.bin, and what `--version` must print.
BINARIES: dict[str, tuple[str, str]] = {
    "claude": ("@anthropic-ai/claude-code", "2.1.330"),
    "codex": ("@openai/codex", "0.169.0"),
    "pi": ("@mariozechner/pi-coding-agent", "0.73.1"),
    "opencode": ("opencode-ai", "1.18.33"),
}

# Gemini CLI, in a folder of its own (as opencode's SDK): adding it leaves the other pins' cache
# (1.3 GB) as it is. Its binary is `gemini`; harness.py puts its .bin on every CLI's PATH.
GEMINI_PKG = "@google/gemini-cli"
GEMINI_VERSION = "0.61.0"
GEMINI_BYTES = 100_000_000

# opencode npm-installs its plugin SDK, at its own version, into its config dir on every start
# until it is there (offline that attempt loads npm's installer and fails: ~0.6 s of CPU a
# run). A user's opencode that went online once has it: the cache holds that install, once.
OPENCODE_SDK = "@opencode-ai/plugin"
_SDK_DIR = "opencode-config"

REPO = Path(__file__).resolve().parents[2]
# (the two variables: a test of a whole run's progress lines, tests/integration, with a stand-in
# npm and a cache of its own)
CACHE_ROOT = Path(os.environ.get("LOOOP_REALCLI_CACHE") or REPO / ".realcli-cache")
INSTALL_TIMEOUT_S = 900
_MARKER = ".installed.json"
# What the pinned CLIs take on disk once installed (measured: node_modules 1.33 GB, the SDK
# 57 MB), so a progress line can say how far an install has come.
CLIS_BYTES = 1_330_000_000
SDK_BYTES = 57_000_000
PROGRESS_EVERY_S = float(os.environ.get("LOOOP_REALCLI_PROGRESS_S") or 15.0)

Say = Callable[[str], None]


def _quiet(_line: str) -> None:
    pass


class InstallError(RuntimeError):
    """The pinned npm packages (agent CLIs, the sandbox runtime) could not be installed or
    do not run: an error, never a skip."""


def npm_path() -> str | None:
    return shutil.which("npm")


def pins_hash(pins: dict[str, str] | None = None) -> str:
    spec = "\n".join(f"{k}@{v}" for k, v in sorted((pins or PINS).items()))
    return hashlib.sha256(spec.encode()).hexdigest()[:12]


def cache_dir(pins: dict[str, str] | None = None) -> Path:
    return CACHE_ROOT / pins_hash(pins)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Two test runs at once: the second waits for the first install instead of racing it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _check_env(root: Path) -> dict[str, str]:
    """A throwaway home for `--version`, so checking a CLI never touches the user's."""
    home = root / "check-home"
    home.mkdir(parents=True, exist_ok=True)
    node_dir = str(Path(shutil.which("node") or "/usr/bin/node").parent)
    return {
        "PATH": f"{root / 'node_modules' / '.bin'}:{node_dir}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "CODEX_HOME": str(home / ".codex"),
        "PI_OFFLINE": "1",
        "DISABLE_AUTOUPDATER": "1",
        "LANG": "C.UTF-8",
    }


def check_binaries(root: Path) -> dict[str, str]:
    """Every CLI runs and reports its pinned version; returns name -> version line."""
    env = _check_env(root)
    seen: dict[str, str] = {}
    for name, (_pkg, version) in BINARIES.items():
        exe = root / "node_modules" / ".bin" / name
        if not exe.exists():
            raise InstallError(f"{exe} is missing after npm install")
        try:
            done = subprocess.run(
                [str(exe), "--version"],
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=60,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise InstallError(f"{name} --version did not run: {e}") from e
        # pi prints its version on stderr; codex may print a warning before its own
        out = (done.stdout + b"\n" + done.stderr).decode("utf-8", "replace").strip()
        if done.returncode != 0 or version not in out:
            raise InstallError(
                f"{name} --version exited {done.returncode}, printed {out[-400:]!r} "
                f"(want {version})"
            )
        seen[name] = next(ln for ln in out.splitlines() if version in ln).strip()
    return seen


def install(pins: dict[str, str] | None = None, log: Path | None = None, say: Say = _quiet) -> Path:
    """The cache directory with every pinned CLI installed and checked (installs at most once).
    `say` gets a line as the install starts, every PROGRESS_EVERY_S while it runs (how much is
    on disk of about how much) and when it is done."""
    pins = pins or PINS
    npm = npm_path()
    if npm is None:
        raise InstallError("npm is not on PATH")
    root = cache_dir(pins)
    with locked(CACHE_ROOT / f"{root.name}.lock"):
        if not _done(root / _MARKER, pins):
            specs = [f"{pkg}@{ver}" for pkg, ver in sorted(pins.items())]
            names = ", ".join(f"{name} {ver}" for name, (_pkg, ver) in BINARIES.items())
            say(
                f"realcli: installing the agent CLIs ({names}) with npm into {root}: "
                f"about {_size(CLIS_BYTES + SDK_BYTES)}, a few minutes (once; "
                "its log: npm-install.log there)"
            )
            npm_install(
                npm, root, specs, "looop-realcli-cache", log or root / "npm-install.log",
                say=say, expect=CLIS_BYTES,
            )  # fmt: skip
            versions = check_binaries(root)
            marker = root / _MARKER
            marker.write_text(json.dumps({"pins": pins, "versions": versions}, indent=2) + "\n")
        if "opencode-ai" in pins:
            _install_opencode_sdk(npm, opencode_sdk_dir(root), pins["opencode-ai"], say)
    with locked(CACHE_ROOT / "gemini.lock"):
        _install_gemini(npm, gemini_dir(), say)
    return root


def gemini_dir() -> Path:
    """Where the pinned Gemini CLI is installed (its own npm folder)."""
    return CACHE_ROOT / f"gemini-cli-{GEMINI_VERSION}"


def _install_gemini(npm: str, folder: Path, say: Say = _quiet) -> None:
    want = {GEMINI_PKG: GEMINI_VERSION}
    if _done(folder / _MARKER, want):
        return
    say(f"realcli: installing {GEMINI_PKG} {GEMINI_VERSION} with npm (about {_size(GEMINI_BYTES)})")
    npm_install(
        npm, folder, [f"{GEMINI_PKG}@{GEMINI_VERSION}"], "looop-realcli-gemini",
        folder / "npm-install.log", say=say, expect=GEMINI_BYTES,
    )  # fmt: skip
    exe = bin_dir(folder) / "gemini"
    done = subprocess.run(
        [str(exe), "--version"], env=_check_env(folder), stdin=subprocess.DEVNULL,
        capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    out = (done.stdout + done.stderr).decode("utf-8", "replace").strip()
    if done.returncode != 0 or GEMINI_VERSION not in out:
        raise InstallError(f"gemini --version exited {done.returncode}, printed {out[-400:]!r}")
    (folder / _MARKER).write_text(json.dumps({"pins": want}, indent=2) + "\n")


def _done(marker: Path, pins: dict[str, str]) -> bool:
    try:
        return bool(json.loads(marker.read_text()).get("pins") == pins)
    except (OSError, ValueError):
        return False


def opencode_sdk_dir(root: Path) -> Path:
    """What opencode's config dir holds once it installed its plugin SDK: package.json,
    package-lock.json, node_modules (harness.py gives each test's home these)."""
    return root / _SDK_DIR


def _install_opencode_sdk(npm: str, folder: Path, version: str, say: Say = _quiet) -> None:
    """The SDK as opencode installs it (an exact version, saved in package.json), by npm."""
    want = {OPENCODE_SDK: version}
    if _done(folder / _MARKER, want):
        return
    say(f"realcli: installing {OPENCODE_SDK} {version} with npm (about {_size(SDK_BYTES)})")
    manifest: dict[str, object] = {"dependencies": want}
    npm_install(
        npm, folder, [f"{OPENCODE_SDK}@{version}"], manifest, folder / "npm-install.log",
        say=say, expect=SDK_BYTES,
    )  # fmt: skip
    if not (folder / "node_modules" / OPENCODE_SDK / "package.json").is_file():
        raise InstallError(f"{OPENCODE_SDK}@{version} is missing from {folder} after npm install")
    (folder / _MARKER).write_text(json.dumps({"pins": want}, indent=2) + "\n")


def npm_install(
    npm: str,
    root: Path,
    specs: list[str],
    name: str | dict[str, object],
    log: Path,
    say: Say = _quiet,
    expect: int = 0,
) -> None:
    """`npm install` of exact specs into `root` (its own package.json, named `name` or `name`
    itself, keeps npm from walking up into the repo); the output goes to `log`; InstallError
    when npm fails. While it runs, `say` hears how much is on disk (of about `expect` bytes)
    every PROGRESS_EVERY_S, and how long it took at the end."""
    root.mkdir(parents=True, exist_ok=True)
    manifest = {"name": name, "private": True} if isinstance(name, str) else name
    (root / "package.json").write_text(json.dumps(manifest) + "\n")
    cmd = [npm, "install", "--prefix", str(root), "--no-audit", "--no-fund", "--save-exact"]
    cmd += specs
    start = time.monotonic()
    with log.open("wb") as out:
        out.write((" ".join(cmd) + "\n").encode())
        out.flush()
        proc = subprocess.Popen(cmd, cwd=root, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        code = _wait_saying(proc, root, start, say, expect)
    text = log.read_bytes().decode("utf-8", "replace").split("\n", 1)[-1]  # npm's own words
    if code != 0:
        raise InstallError(f"npm install exited {code}: {text.strip()[-1500:]}")
    took = _span(time.monotonic() - start)
    say(f"realcli: npm install done: {_size(disk_bytes(root / 'node_modules'))} in {took}")


def _wait_saying(
    proc: subprocess.Popen[bytes], root: Path, start: float, say: Say, expect: int
) -> int:
    """npm's exit code; a progress line each PROGRESS_EVERY_S until then (bounded)."""
    while True:
        try:
            return proc.wait(timeout=PROGRESS_EVERY_S)
        except subprocess.TimeoutExpired:
            pass
        spent = time.monotonic() - start
        if spent > INSTALL_TIMEOUT_S:
            proc.kill()
            proc.wait()
            raise InstallError(f"npm install took over {INSTALL_TIMEOUT_S}s") from None
        have = disk_bytes(root / "node_modules")
        of = f" of about {_size(expect)} ({min(99, 100 * have // expect)}%)" if expect else ""
        say(f"realcli: npm install: {_size(have)}{of} on disk after {_span(spent)}")


def disk_bytes(folder: Path) -> int:
    """Bytes of the files under `folder`, each counted once (npm hard-links some)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for here, _dirs, files in os.walk(folder):
        for f in files:
            try:
                st = os.lstat(os.path.join(here, f))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def _size(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


def _span(secs: float) -> str:
    m, s = divmod(round(secs), 60)
    return f"{m}m {s:02}s" if m else f"{s}s"


def missing_programs(debian: dict[str, str]) -> list[str]:
    """The programs of `debian` (program -> the Debian package that holds it) not on PATH."""
    return [prog for prog in debian if shutil.which(prog) is None]


def install_debian(debian: dict[str, str], timeout: float = 600) -> None:
    """apt-get the packages of `debian` (program -> package) whose programs are not on PATH
    (root only); InstallError saying what to install when that cannot be done."""
    missing = missing_programs(debian)
    if not missing:
        return
    # another test process may install them while this one waits its turn
    apt_install([debian[p] for p in missing], timeout, lambda: bool(missing_programs(debian)))
    still = missing_programs(debian)
    if still:
        raise InstallError(
            f"apt-get installed {' '.join(debian[p] for p in missing)} but "
            f"{', '.join(still)} is still not on PATH"
        )


APT_LOCK = Path("/tmp/looop-tests-apt.lock")


@contextlib.contextmanager
def _apt_turn() -> Iterator[None]:
    """One apt-get at a time across the run's processes (xdist workers install their parts
    at once, and dpkg's own lock refuses a second apt-get rather than waiting)."""
    with open(APT_LOCK, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def apt_install(
    pkgs: list[str], timeout: float = 600, needed: Callable[[], bool] | None = None
) -> None:
    """apt-get install `pkgs` (root only), refreshing the package lists once when the install
    fails; InstallError naming the packages and the command when it cannot. Waits its turn
    with other test processes, and for dpkg's lock held by anything else."""
    apt = shutil.which("apt-get")
    if apt is None:
        raise InstallError(f"no apt-get: install {' '.join(pkgs)}")
    if os.geteuid() != 0:
        raise InstallError(f"not root: run `sudo apt-get install -y {' '.join(pkgs)}`")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    wait = ["-o", f"DPkg::Lock::Timeout={int(timeout)}"]
    cmd = [apt, *wait, "install", "-y", "--no-install-recommends", *pkgs]
    with _apt_turn():
        if needed is not None and not needed():
            return
        done = _run(cmd, env, timeout)
        if done.returncode != 0:  # stale or absent package lists: refresh once, then retry
            _run([apt, *wait, "update"], env, timeout)
            done = _run(cmd, env, timeout)
    if done.returncode != 0:
        text = (done.stdout + done.stderr).decode("utf-8", "replace").strip()
        raise InstallError(
            f"apt-get install {' '.join(pkgs)} exited {done.returncode}: {text[-800:]}"
        )


def _run(cmd: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            cmd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise InstallError(f"{' '.join(cmd)} took over {timeout:g} s") from e


def bin_dir(root: Path) -> Path:
    return root / "node_modules" / ".bin"


def say_on_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def main() -> int:
    try:
        root = install(say=say_on_stderr)
    except InstallError as e:
        print(f"realcli install failed: {e}", file=sys.stderr)
        return 1
    print(root)
    for name, line in json.loads((root / _MARKER).read_text())["versions"].items():
        print(f"  {name}: {line}")
    return 0


if __name__ == "__main__":
    os.umask(0o022)
    raise SystemExit(main())
