"""The `looop` console entry: looop's own modules from one bundle file, then `cli.main`.

A hot verb (`status`, `claim`, `told` …) imports some 30 of looop's modules, and for each the
interpreter looks the file up, stats it, opens and reads its .pyc: that lookup costs as much
as the verb's own work. The bundle is one file beside the .pyc files (`looop/__pycache__/`)
holding the compiled code of the modules the light verbs import (only a light verb writes
it). One read serves them all.

It is checked the way Python checks a .pyc, only stricter: each module's source is stat'ed
when it is imported and served from the bundle only when its size and mtime (to the
nanosecond) are those it was compiled from, by this interpreter (magic number and
optimisation level). Anything else is imported the usual way, and a light verb that
imported modules the bundle lacked (or held stale) writes a fresh bundle when it ends (once,
atomically, by rename). The file is a small marshalled index, then the modules' code: each
module's code is unmarshalled from a view of the one buffer read, never copied out first.
A read-only install, `PYTHONDONTWRITEBYTECODE`, or `LOOOP_NO_BUNDLE=1` (which also stops the
reading) leave it alone: everything still works, only less fast.
"""

from __future__ import annotations

import _frozen_importlib_external as _external  # loaded at startup: costs nothing
import atexit
import gc
import os
import sys
from _frozen_importlib import ModuleSpec
from marshal import dumps, loads

TYPE_CHECKING = False  # not `from typing`: this is the first thing every command runs
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any

FORMAT = 2
# A process that imported more of looop than this, or click, is not a light verb: its modules
# would bloat the bundle every light verb reads. The light verbs import 16-30; a `looop kill`
# run in place (no beat host) about 70, whose code would triple the bundle.
MAX_MODULES = 40
GC_THRESHOLD = 50_000  # allocations between young collections (Python's default: 700)

# name -> (is_package, mtime_ns, size, marshalled code)
Entry = tuple[bool, int, int, bytes]
# in the file: name -> (is_package, mtime_ns, size, where its code starts counted back from
# the end of the file, its length)
Index = tuple[bool, int, int, int, int]


class Bundle:
    """A meta path finder and loader serving `package`'s modules (rooted at `root`) from the
    bundle file at `path` (see the module doc)."""

    def __init__(self, package: str, root: str, path: str) -> None:
        self.package = package
        self.root = root
        self.path = path
        self.index: dict[str, Index] = {}
        self.data = b""  # the whole file: the index, then every module's code
        self.served: set[str] = set()
        self.stale = False  # a module was imported the usual way: the bundle lacked it
        self._load()

    def _load(self) -> None:
        try:
            with open(self.path, "rb") as fh:
                data = fh.read()
            head, index = loads(data)  # the index; the code after it is read per module
        except (OSError, ValueError, EOFError, TypeError):
            return  # no bundle yet, or not one we can read: import the usual way
        if head == _head() and isinstance(index, dict):
            self.index, self.data = index, data

    def code_of(self, name: str) -> bytes | memoryview:
        """The marshalled code of `name`, a view of the file's bytes (not a copy)."""
        back, length = self.index[name][3:5]
        start = len(self.data) - back
        return memoryview(self.data)[start : start + length]

    def source_of(self, name: str, is_package: bool) -> str:
        rel = name[len(self.package) + 1 :].replace(".", "/")
        if is_package:
            return f"{self.root}/{rel}/__init__.py" if rel else f"{self.root}/__init__.py"
        return f"{self.root}/{rel}.py"

    # the meta path finder protocol
    def find_spec(self, name: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        if not name.startswith(self.package + "."):
            return None
        entry = self.index.get(name)
        if entry is None:
            self.stale = True
            return None
        is_package, mtime_ns, size = entry[0], entry[1], entry[2]
        source = self.source_of(name, is_package)
        try:
            st = os.stat(source)
        except OSError:
            st = None
        if st is None or st.st_mtime_ns != mtime_ns or st.st_size != size:
            self.stale = True
            return None  # changed (or gone) since bundled: the usual import decides
        spec = ModuleSpec(name, self, origin=source, is_package=is_package)  # type: ignore[arg-type]
        spec.has_location = True
        if is_package:
            spec.submodule_search_locations = [source.rpartition("/")[0]]
        return spec

    # the loader protocol
    def create_module(self, spec: ModuleSpec) -> None:
        return None  # the default module object

    def exec_module(self, module: ModuleType) -> None:
        name = module.__name__
        code = loads(self.code_of(name))
        self.served.add(name)
        exec(code, module.__dict__)

    def get_resource_reader(self, fullname: str) -> Any:
        """A package's data files (importlib.resources): Python's own file loader's reader,
        beside the source, as when the package is imported the usual way (that loader loads
        importlib's readers itself, only for a reader of package data)."""
        source = self.source_of(fullname, self.index[fullname][0])
        return _external.SourceFileLoader(fullname, source).get_resource_reader(fullname)

    def save_if_needed(self, modules: dict[str, ModuleType]) -> bool:
        """Write a fresh bundle when this process imported modules the bundle lacked; True
        when written. Only for a light process (see MAX_MODULES); never raises."""
        if not self.stale or "click" in modules:
            return False
        mine = [n for n in modules if n.startswith(self.package + ".") and n != __name__]
        if len(mine) > MAX_MODULES:
            return False
        try:
            entries = dict(self._still_valid())
            for name in mine:
                if name not in entries:
                    got = self._compiled(name, modules[name])
                    if got is not None:
                        entries[name] = got
            self._write(entries)
        except (OSError, ValueError, SyntaxError):
            return False
        return True

    def _still_valid(self) -> list[tuple[str, Entry]]:
        out = []
        for name, entry in self.index.items():
            try:
                st = os.stat(self.source_of(name, entry[0]))
            except OSError:
                continue
            if (st.st_mtime_ns, st.st_size) == (entry[1], entry[2]):
                out.append((name, (entry[0], entry[1], entry[2], bytes(self.code_of(name)))))
        return out

    def _compiled(self, name: str, module: ModuleType) -> Entry | None:
        spec = getattr(module, "__spec__", None)
        is_package = bool(spec is not None and spec.submodule_search_locations is not None)
        source = self.source_of(name, is_package)
        if spec is None or spec.origin != source:
            return None  # not a plain source module where we look for it
        with open(source, "rb") as fh:
            st = os.fstat(fh.fileno())
            text = fh.read()
        code = compile(text, source, "exec", dont_inherit=True, optimize=sys.flags.optimize)
        return (is_package, st.st_mtime_ns, st.st_size, dumps(code))

    def _write(self, entries: dict[str, Entry]) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        index: dict[str, Index] = {}
        back = sum(len(e[3]) for e in entries.values())
        for name, (is_package, mtime_ns, size, code) in entries.items():
            index[name] = (is_package, mtime_ns, size, back, len(code))
            back -= len(code)
        tmp = f"{self.path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(dumps((_head(), index)))
                fh.write(b"".join(e[3] for e in entries.values()))
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise


def _head() -> tuple[int, bytes, int]:
    """What a bundle must match to be read: its format, the interpreter's bytecode magic
    number and the optimisation level its code was compiled at."""
    return (FORMAT, _external.MAGIC_NUMBER, sys.flags.optimize)


def bundle_path(root: str) -> str:
    tag = sys.implementation.cache_tag or "python"
    return f"{root}/__pycache__/hot.{tag}-opt{sys.flags.optimize}.bundle"


def install(env: dict[str, str] | os._Environ[str]) -> Bundle | None:
    """Put the bundle first on the meta path (None when switched off)."""
    if env.get("LOOOP_NO_BUNDLE") == "1":
        return None
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the looop package
    bundle = Bundle("looop", root, bundle_path(root))
    sys.meta_path.insert(0, bundle)
    return bundle


def main() -> None:
    # Fewer collections: a light verb ends before its garbage matters; a long-lived process
    # sets Python's own thresholds back (core/gcpolicy.py).
    gc.set_threshold(GC_THRESHOLD)
    bundle = install(os.environ)
    import looop.hot.main as table  # lazy: the verb table, once the bundle (which serves it) is in

    code: Any = 0
    served = False  # a tick or worker start the beat host's child ran: this one only waited
    try:
        table.main()
    except SystemExit as e:
        code = e.code
        # only a verb that loaded the beat host's client can have been served by it
        client = sys.modules.get("looop.hot.beatclient")
        served = client is not None and isinstance(e, client.Served)
    finally:
        light = _light(sys.argv[1:], table.SHORT_VERBS, served)
        if bundle is not None:
            sys.meta_path.remove(bundle)
            # only a light verb's modules: a beat's or a worker start's would make every
            # light verb read four times the bytes it needs
            if light and not sys.dont_write_bytecode:
                bundle.save_if_needed(dict(sys.modules))
    if light:
        _exit_now(code)
    raise SystemExit(code)


def _light(args: list[str], short_verbs: frozenset[str], served: bool = False) -> bool:
    """A short verb (hot/main.py's SHORT_VERBS) served without click (or one a child of the
    beat host ran), with no other thread and no exit hook: nothing the interpreter's
    teardown would still do that anyone could notice."""
    if args[:1] == ["_"]:
        args = args[1:]
    short = served or (bool(args) and args[0] in short_verbs)
    if not short or "click" in sys.modules:
        return False
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        return False
    return atexit._ncallbacks() == 0


def _exit_now(code: Any) -> None:
    """Exit as SystemExit(code) would, without the interpreter's teardown (freeing every
    object one by one costs a light verb as much as its own work): the output is flushed
    first, and a light verb holds no other buffered file open."""
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code & 0xFF
    else:
        try:
            sys.stderr.write(f"{code}\n")
        except (OSError, ValueError):
            pass
        status = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass  # a reader that went away: nothing left to say to it
    os._exit(status)
