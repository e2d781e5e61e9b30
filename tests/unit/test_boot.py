"""The console entry (looop.hot.boot): the module bundle serves exactly what the sources say, and
a light verb's fast exit keeps its output and exit code."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from itertools import pairwise
from marshal import dumps, loads
from pathlib import Path

import pytest

from looop.hot import boot
from tests.helpers import outside_env

pytestmark = pytest.mark.process  # real processes: not make check's tier

PKG = "bootpkg"


@pytest.fixture
def pkg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A small package on sys.path (a package, a submodule, a subpackage), forgotten after.
    CPython's own .pyc files stay out of it: they date a source by whole seconds and size, so
    a same-second same-size edit is stale in *them* — what is under test is the bundle."""
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    root = tmp_path / PKG
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "a.py").write_text("VALUE = 'first'\n")
    (root / "sub" / "__init__.py").write_text("from bootpkg.sub import b\n")
    (root / "sub" / "b.py").write_text("def twice(x):\n    return 2 * x\n")
    (root / "sub" / "data.txt").write_text("package data\n")
    sys.path.insert(0, str(tmp_path))
    try:
        yield root
    finally:
        sys.path.remove(str(tmp_path))
        _forget()


def _forget() -> None:
    for name in [n for n in sys.modules if n == PKG or n.startswith(PKG + ".")]:
        del sys.modules[name]
    importlib.invalidate_caches()


def _mods() -> dict[str, object]:
    """The package's modules as a light process holds them (the suite's own process has
    loaded click and the rest long ago)."""
    return {n: m for n, m in sys.modules.items() if n == PKG or n.startswith(PKG + ".")}


def _import_with(bundle: boot.Bundle) -> tuple[str, int]:
    """A fresh import of the package's modules through `bundle`: (a.VALUE, sub.b.twice(21))."""
    _forget()
    sys.meta_path.insert(0, bundle)
    try:
        a = importlib.import_module(f"{PKG}.a")
        b = importlib.import_module(f"{PKG}.sub.b")
        return a.VALUE, b.twice(21)
    finally:
        sys.meta_path.remove(bundle)


def _built(root: Path) -> boot.Bundle:
    """A bundle file for the package, written as a light verb writes it on its way out."""
    path = str(root / "__pycache__" / "hot.bundle")
    first = boot.Bundle(PKG, str(root), path)
    _import_with(first)
    assert first.stale  # nothing was bundled yet
    assert first.save_if_needed(_mods())
    return boot.Bundle(PKG, str(root), path)


def test_a_bundle_serves_every_module_it_holds(pkg: Path) -> None:
    bundle = _built(pkg)
    assert _import_with(bundle) == ("first", 42)
    assert bundle.served == {f"{PKG}.a", f"{PKG}.sub", f"{PKG}.sub.b"}
    assert not bundle.stale
    mod = sys.modules[f"{PKG}.sub"]
    assert mod.__file__ == str(pkg / "sub" / "__init__.py")
    assert mod.__path__ == [str(pkg / "sub")]
    # its data files read as they do beside a package imported the usual way
    from importlib import resources

    assert (resources.files(f"{PKG}.sub") / "data.txt").read_text() == "package data\n"


def test_a_changed_source_is_imported_from_the_source_not_the_bundle(pkg: Path) -> None:
    bundle = _built(pkg)
    (pkg / "a.py").write_text("VALUE = 'second'\n")  # a new size
    os.utime(pkg / "sub" / "b.py", ns=(0, 10**9))  # same bytes, another mtime
    (pkg / "sub" / "b.py").write_text("def twice(x):\n    return 3 * x\n")
    assert _import_with(bundle) == ("second", 63)
    assert bundle.served == {f"{PKG}.sub"}
    assert bundle.stale
    # the next light run writes a bundle that serves the new code
    assert bundle.save_if_needed(_mods())
    again = boot.Bundle(PKG, str(pkg), bundle.path)
    assert _import_with(again) == ("second", 63)
    assert f"{PKG}.a" in again.served


def test_a_same_size_edit_within_the_same_second_is_still_seen(pkg: Path) -> None:
    bundle = _built(pkg)
    st = os.stat(pkg / "a.py")
    (pkg / "a.py").write_text("VALUE = 'fresh'\n")  # as long as 'first'
    os.utime(pkg / "a.py", ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert _import_with(bundle)[0] == "fresh"


def test_a_removed_source_is_not_served_from_the_bundle(pkg: Path) -> None:
    bundle = _built(pkg)
    (pkg / "a.py").unlink()
    _forget()
    sys.meta_path.insert(0, bundle)
    try:
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(f"{PKG}.a")
    finally:
        sys.meta_path.remove(bundle)


@pytest.mark.parametrize(
    "content",
    [b"", b"not marshal at all", dumps(("other", {})), dumps(((99, b"xxxx", 0), {}))],
    ids=["empty", "garbage", "wrong-shape", "other-interpreter"],
)
def test_an_unreadable_or_foreign_bundle_is_ignored_and_replaced(pkg: Path, content: bytes) -> None:
    path = pkg / "__pycache__" / "hot.bundle"
    path.parent.mkdir()
    path.write_bytes(content)
    bundle = boot.Bundle(PKG, str(pkg), str(path))
    assert _import_with(bundle) == ("first", 42)
    assert bundle.served == set()
    assert bundle.save_if_needed(_mods())
    head, entries = loads(path.read_bytes())
    assert head == boot._head()
    assert set(entries) == {f"{PKG}.a", f"{PKG}.sub", f"{PKG}.sub.b"}


def test_the_file_is_an_index_then_the_code_each_module_reads_in_place(pkg: Path) -> None:
    """A light verb reads one buffer and unmarshals the code of the modules it imports from it:
    the index says where each module's code lies, counted back from the end of the file."""
    bundle = _built(pkg)
    raw = (pkg / "__pycache__" / "hot.bundle").read_bytes()
    head, index = loads(raw)  # marshal reads the index and leaves the code after it
    assert head == boot._head()
    spans = []
    for name, (_pkg, _mtime, _size, back, length) in index.items():
        start = len(raw) - back
        code = loads(raw[start : start + length])
        assert code.co_filename == bundle.source_of(name, _pkg)
        spans.append((start, start + length))
    spans.sort()
    assert spans[-1][1] == len(raw)  # the code fills the file's tail, no span over another
    assert all(a[1] == b[0] for a, b in pairwise(spans))
    assert _import_with(bundle) == ("first", 42)
    assert not bundle.stale


def test_a_heavy_process_writes_no_bundle(pkg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = pkg / "__pycache__" / "hot.bundle"
    bundle = boot.Bundle(PKG, str(pkg), str(path))
    _import_with(bundle)
    assert not bundle.save_if_needed({**_mods(), "click": sys})
    monkeypatch.setattr(boot, "MAX_MODULES", 2)
    assert not bundle.save_if_needed(_mods())
    assert not path.exists()


def test_a_read_only_place_costs_nothing_but_the_bundle(pkg: Path) -> None:
    if os.geteuid() == 0:
        path = pkg / "not-a-dir" / "hot.bundle"
        (pkg / "not-a-dir").write_text("")  # even root cannot make a dir where a file is
    else:
        pkg.chmod(0o555)
        path = pkg / "__pycache__" / "hot.bundle"
    try:
        bundle = boot.Bundle(PKG, str(pkg), str(path))
        assert _import_with(bundle) == ("first", 42)
        assert not bundle.save_if_needed(_mods())
    finally:
        pkg.chmod(0o755)


def test_the_entry_loads_nothing_but_builtins_at_first() -> None:
    """boot runs before anything else in every command: its own imports are the
    interpreter's built-in and frozen modules only."""
    import ast

    tree = ast.parse(Path(boot.__file__).read_text())
    top = {
        (n.module if isinstance(n, ast.ImportFrom) else a.name).split(".")[0]
        for n in tree.body
        if isinstance(n, ast.Import | ast.ImportFrom)
        for a in n.names
    }
    top.discard("__future__")
    fresh = subprocess.run(
        [sys.executable, "-c", "import sys; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout.split()
    assert top <= set(sys.builtin_module_names) | set(fresh)


# The console entry against the plain one: the same output and exit code for light verbs
# (served fast, ended without teardown) and for others, success and failure alike.
CASES = [
    ["version"],
    ["status"],
    ["status", "--json"],
    ["ls"],
    ["claim", "job-1", "--session", "w1"],
    ["told", "w1"],
    ["tell", "nobody", "hi"],
    ["cost", "report", "session", "w1", "claude", "-3"],  # a bad amount
    ["ls", "--bogus"],  # click's error, not a light verb
    ["help"],
]


def _run(entry: str, args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    code = f"import sys\nfrom {entry} import main\nsys.argv[1:] = {args!r}\nmain()\n"
    p = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    return p.returncode, p.stdout, p.stderr


@pytest.mark.timeout(240)
def test_the_console_entry_answers_as_the_plain_entry_does(tmp_path: Path) -> None:
    env = outside_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # let it write its bundle, as a user's does
    env.update(LOOOP_DATA_DIR=str(tmp_path / "data"), HOME=str(tmp_path), TZ="UTC")
    for args in CASES:
        plain = _run("looop.hot.main", args, env)
        ours = _run("looop.hot.boot", args, env)
        if args[0] == "claim" and args[-1] == "w1":
            assert plain[0] == 0 and ours[0] == 0  # the same holder claims again
        elif args[0] != "status":
            assert ours == plain, args
        else:  # status names the time it was read
            assert ours[0] == plain[0] == 0
            assert _no_time(ours[1], args) == _no_time(plain[1], args)
        if args[0] in ("tell", "cost"):  # the failures fail through both entries
            assert ours[0] == 1 and ours[2].startswith("looop: "), ours
    root = os.path.dirname(os.path.dirname(boot.__file__))
    if os.access(root, os.W_OK):  # the light verbs left their bundle for the next ones
        _, entries = loads(Path(boot.bundle_path(root)).read_bytes())
        assert {"looop.hot.main", "looop.hot.status", "looop.hot.config"} <= set(entries)


def _no_time(out: str, args: list[str]) -> object:
    """Status less the moment it was read (it names that time)."""
    if "--json" in args:
        got = json.loads(out)
        got.pop("now")
        return got
    return [line for line in out.splitlines() if "as of" not in line]


@pytest.mark.timeout(60)
def test_a_light_verb_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    env = outside_env()
    env.update(LOOOP_DATA_DIR=str(tmp_path / "data"), HOME=str(tmp_path))
    r, w = os.pipe()
    os.close(r)
    try:
        p = subprocess.run(
            [sys.executable, "-m", "looop", "status"],
            env=env,
            stdout=w,
            stderr=subprocess.PIPE,
            text=True,
            timeout=30,
        )
    finally:
        os.close(w)
    assert p.returncode == 0
    assert p.stderr == ""


def test_a_tick_ends_light_only_when_the_beat_host_ran_it() -> None:
    # served: this process only waited for the host's child, so no teardown is owed; a beat
    # in place ran everything here and exits in full (checked in a fresh interpreter: this
    # one has pytest's threads and exit hooks)
    code = (
        "from looop.hot import boot\n"
        "from looop.hot.main import SHORT_VERBS\n"
        "for args in (['tick'], ['worker', 'start', 'w1', 'go']):\n"
        "    print(boot._light(args, SHORT_VERBS, served=True), boot._light(args, SHORT_VERBS))\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.stdout.split() == ["True", "False", "True", "False"], p.stderr


@pytest.mark.timeout(240)
def test_a_live_sessions_screen_and_input_answer_as_through_the_plain_entry(
    tmp_path: Path,
) -> None:
    """shot, send and key on a live session end light (their socket closed, their output
    flushed before the fast exit) and say what the plain entry says."""
    from looop.sessions.client import kill
    from looop.sessions.spawner import spawn

    data = tmp_path / "data"
    data.mkdir()
    env = outside_env()
    env.update(LOOOP_DATA_DIR=str(data), HOME=str(tmp_path))
    # no echo, input read into /dev/null: a send changes neither the screen nor the log
    quiet = "stty -echo; echo ready; exec cat >/dev/null"
    spawn(data, "w1", ["sh", "-c", quiet], cwd=data, env=env)
    try:
        log = data / "sessions" / "w1" / "output.log"
        deadline = time.monotonic() + 30
        while not (log.exists() and b"ready" in log.read_bytes()):
            assert time.monotonic() < deadline, "the session never printed"
            time.sleep(0.02)
        for args in (
            ["shot", "w1"],
            ["shot", "w1", "--json"],
            ["send", "--json", "w1", "hi"],
            ["key", "w1", "Tab", "--json"],
        ):
            plain = _run("looop.hot.main", args, env)
            ours = _run("looop.hot.boot", args, env)
            assert ours == plain, args
            assert ours[0] == 0 and ours[1].strip(), args
    finally:
        kill(data, "w1")
