"""The host registry: `<data>/hosts/<name>.json`, one file per host of either kind — an SSH
host (`ssh://`, `Host`) or a Kubernetes namespace (`k8s://`, `KubeHost`) — and the home's
record of each remote worker, `<data>/hosts/workers/<id>.json` (which host runs it; over or
not). A host record without a `kind` is an SSH host (as every record was before Kubernetes).

Strict both ways: a bad name or URL is refused with one line before anything is written, and
a record that does not read back as one is an error, never a host that silently vanished."""

from __future__ import annotations

import concurrent.futures
import contextlib
import importlib
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

from looop.home import store
from looop.home.errors import CorruptState, LooopError
from looop.home.hashing import fnv1a_64
from looop.home.where import HOSTS
from looop.remote import untrusted
from looop.remote.kube import manifests as mf
from looop.remote.kube.cluster import load_client
from looop.remote.kube.target import check_template, parse_target

NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}")
_USER_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
LOCAL = "local"  # the home machine itself, as placement and `--host` name it
RESERVED = frozenset({LOCAL, "workers"})
FORMAT = 1
SSH = "ssh"
K8S = "k8s"
MAX_CAP = 10_000
DEFAULT_DEADLINE_S = 4 * 3600  # as manifests.WorkerShape: the stuck backstop
DEFAULT_TTL_S = 3600


A = TypeVar("A")
C = TypeVar("C")


class HostError(LooopError):
    pass


def each_at_once(clients: Mapping[str, C], ask: Callable[[C], A]) -> dict[str, A]:
    """Each host (by name: its client) asked once, all at once."""
    with concurrent.futures.ThreadPoolExecutor(max(1, len(clients))) as pool:
        return dict(zip(clients, pool.map(ask, clients.values()), strict=True))


@dataclass(frozen=True)
class Host:
    name: str
    host: str
    user: str | None
    port: int | None
    cap: int  # 0: no cap of its own
    ssh_config: str | None = None  # `ssh -F FILE` for this host (else the user's own config)
    kind = SSH

    @property
    def url(self) -> str:
        who = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        return f"ssh://{who}{self.host}{port}"

    @property
    def image(self) -> str | None:
        return None

    def to_json(self) -> dict[str, Any]:
        return {"v": FORMAT, "kind": SSH, **asdict(self)}


@dataclass(frozen=True)
class KubeHost:
    """A namespace of a cluster, reached through a context of the user's own kubeconfig:
    each worker placed here is one Job (remote/kube), made with its options
    (manifests.WorkerShape's)."""

    name: str
    target: str  # k8s://CONTEXT/NAMESPACE, as parse_target reads it
    image: str
    cap: int  # 0: no cap of its own
    kubeconfig: str | None = None  # absolute; None: $KUBECONFIG, else ~/.kube/config
    secret_env: str | None = None  # a Secret in the namespace, passed to the pod as envFrom
    cpu: str | None = None
    memory: str | None = None
    deadline_s: int = DEFAULT_DEADLINE_S
    ttl_s: int = DEFAULT_TTL_S
    pod_template: dict[str, Any] | None = None  # a patch of each pod's spec (checked)
    git_secret: str | None = None  # a Secret whose username/password the clones use
    kind = K8S

    @property
    def url(self) -> str:
        return self.target

    def job_options(self) -> dict[str, Any]:
        """What each worker's Job is made with (manifests.WorkerShape's options)."""
        kept = ("image", "cpu", "memory", "deadline_s", "ttl_s", "secret_env", "git_secret")
        return {"template": self.pod_template, **{k: getattr(self, k) for k in kept}}

    def to_json(self) -> dict[str, Any]:
        return {"v": FORMAT, "kind": K8S, **asdict(self)}


AnyHost = Host | KubeHost


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name) or name in RESERVED:
        raise HostError(
            f"bad host name {name!r}: use 1-32 lowercase letters, digits or '-' "
            f"(not starting with '-'; not {' or '.join(sorted(RESERVED))})"
        )
    return name


def parse_url(url: str) -> tuple[str, str | None, int | None]:
    """ssh://[user@]host[:port] -> (host, user, port); anything else refused in one line."""
    bad = HostError(f"bad host address {url!r}: write it as ssh://user@host[:port]")
    if not url.startswith("ssh://"):
        raise bad
    rest = url[len("ssh://") :]
    user: str | None = None
    if "@" in rest:
        user, rest = rest.split("@", 1)
        if not _USER_RE.fullmatch(user):
            raise bad
    port: int | None = None
    if ":" in rest:
        rest, raw = rest.rsplit(":", 1)
        if not raw.isdecimal() or not 1 <= int(raw) <= 65535:
            raise HostError(f"bad port in {url!r}: use 1-65535")
        port = int(raw)
    # a leading '-' would be read by ssh as an option: refused with everything else odd
    if not _HOSTNAME_RE.fullmatch(rest):
        raise bad
    return rest, user, port


def hosts_dir(data: Path) -> Path:
    return data / HOSTS


def host_file(data: Path, name: str) -> Path:
    return hosts_dir(data) / f"{check_name(name)}.json"


def _fields(cls: type[AnyHost], raw: dict[str, Any]) -> dict[str, Any]:
    """A record's values of a host's fields (one with a default may be left out)."""
    return {
        f.name: raw[f.name] if f.default is MISSING else raw.get(f.name, f.default)
        for f in fields(cls)
    }


def _from_json(raw: Any, where: Path) -> AnyHost:
    """A host record read back, every value checked as `host add` checks it (an SSH host's
    address as its URL reads again)."""
    kind = raw.get("kind", SSH) if isinstance(raw, dict) and raw.get("v") == FORMAT else None
    try:
        if kind == K8S:
            return _kube_host(_fields(KubeHost, raw))
        if kind == SSH:
            h = Host(**_fields(Host, raw))
            check_name(h.name), check_cap(h.cap)
            cfg = h.ssh_config
            if parse_url(h.url) == (h.host, h.user, h.port) and (
                cfg is None or (isinstance(cfg, str) and cfg.startswith("/"))
            ):
                return h
    except (KeyError, TypeError, LooopError):
        pass
    raise HostError(f"{where} is not a host record — fix it or `looop host rm` it")


def _kube_host(f: dict[str, Any]) -> KubeHost:
    """Every value of a KubeHost's fields checked, each refusal one line naming it."""
    name, target, kubeconfig = f["name"], f["target"], f["kubeconfig"]
    if not isinstance(name, str) or not isinstance(target, str):
        raise HostError("a Kubernetes host needs a name and a k8s://CONTEXT/NAMESPACE target")
    check_name(name)
    parse_target(target)
    check_cap(f["cap"])
    if kubeconfig is not None and (
        not isinstance(kubeconfig, str) or not kubeconfig.startswith("/")
    ):
        raise HostError(f"kubeconfig {kubeconfig!r} is not an absolute path")
    h = KubeHost(**f)
    mf.WorkerShape("host", ["x"], home="", **h.job_options())  # as each worker's Job checks them
    return h


def check_cap(cap: Any) -> int:
    if type(cap) is not int or not 0 <= cap <= MAX_CAP:
        raise HostError(f"--cap must be 0 (no cap) to {MAX_CAP}, not {cap!r}")
    return cap


def add(data: Path, name: str, url: str, cap: int, ssh_config: str | None = None) -> Host:
    check_name(name)
    host, user, port = parse_url(url)
    check_cap(cap)
    _not_registered(data, name)
    if ssh_config is not None and not os.path.isfile(ssh_config):
        raise HostError(f"--ssh-config {ssh_config}: no such file")
    cfg = os.path.abspath(ssh_config) if ssh_config is not None else None
    h = Host(name, host, user, port, cap, cfg)
    store.write_json(host_file(data, name), h.to_json())
    return h


def kube_host(
    data: Path,
    name: str,
    target: str,
    *,
    kubeconfig: str | None = None,
    pod_template: str | None = None,
    **opts: Any,
) -> KubeHost:
    """A Kubernetes host as `host add` would register it: every value checked (one line
    each), nothing written; `pod_template`: a YAML or JSON file, kept in the record; `opts`:
    its other fields (image, cap, cpu, …), each left out a KubeHost's default (cap: 0)."""
    check_name(name)
    parse_target(target)
    cfg = None
    if kubeconfig is not None:
        if not os.path.isfile(kubeconfig):
            raise HostError(f"--kubeconfig {kubeconfig}: no such file")
        cfg = os.path.abspath(kubeconfig)
    given = {"name": name, "target": target, "kubeconfig": cfg, "cap": 0, **opts}
    given["pod_template"] = None if pod_template is None else _template_file(pod_template)
    h = _kube_host(_fields(KubeHost, given))
    _not_registered(data, name)
    return h


def _template_file(path: str) -> Any:
    """The file's patch, its field names checked against the client's models (the k8s extra
    brings both the client and its YAML reader)."""
    models = load_client().client  # without the extra: the one line that says how to get it
    yaml = importlib.import_module("yaml")
    try:
        with open(path, encoding="utf-8") as f:
            patch = yaml.safe_load(f)
    except (OSError, ValueError, yaml.YAMLError) as e:
        raise HostError(f"--pod-template {path}: {' '.join(str(e).split())[:200]}") from None
    return check_template(patch, models)


def _not_registered(data: Path, name: str) -> None:
    if host_file(data, name).exists():
        raise HostError(f"host {name} is already registered — `looop host rm {name}` first")


def save(data: Path, h: AnyHost) -> AnyHost:
    """Write a checked host's record (refused when one of that name exists)."""
    _not_registered(data, h.name)
    store.write_json(host_file(data, h.name), h.to_json())
    return h


def get(data: Path, name: str) -> Host:
    """An SSH host; a Kubernetes host of that name is refused in one line (what needs an SSH
    link cannot use one)."""
    h = lookup(data, name)
    if not isinstance(h, Host):
        raise HostError(
            f"host {name} is a Kubernetes host ({h.url}), not an SSH host: that verb is for "
            "SSH hosts only"
        )
    return h


def lookup(data: Path, name: str) -> AnyHost:
    """The host of that name, of either kind."""
    path = host_file(data, name)
    try:
        raw = store.read_json(path)
    except CorruptState as e:
        raise HostError(f"{path} is unreadable ({e}) — fix it or `looop host rm {name}`") from e
    if raw is None:
        raise HostError(f"no host {name} — `looop host ls` lists them, `looop host add` adds one")
    h = _from_json(raw, path)
    if h.name != name:
        raise HostError(f"{path} names host {h.name!r}, not {name!r} — fix it or remove it")
    return h


def host_kind(data: Path, name: str) -> str | None:
    """SSH or K8S; None when no readable host of that name is registered."""
    try:
        return lookup(data, name).kind
    except HostError:
        return None


def names(data: Path) -> list[str]:
    try:
        entries = os.listdir(hosts_dir(data))
    except OSError:
        return []
    return sorted(n[:-5] for n in entries if n.endswith(".json") and NAME_RE.fullmatch(n[:-5]))


def remove(data: Path, name: str) -> None:
    if not store.remove(host_file(data, name)):
        raise HostError(f"no host {name} — `looop host ls` lists them")


def key(data: Path, name: str, machine: str) -> str:
    """This home's satellite on that host: one per home machine, data dir and host name."""
    return fnv1a_64(f"{machine}\0{data}\0{name}".encode())


# remote workers as the home knows them


def workers_dir(data: Path) -> Path:
    return hosts_dir(data) / "workers"


def record_file(data: Path, wid: str) -> Path:
    return workers_dir(data) / f"{wid}.json"


def record(data: Path, wid: str) -> dict[str, Any] | None:
    """The home's record of a remote worker, or None when the id is no remote worker."""
    try:
        raw = store.read_json_object(record_file(data, wid))
    except CorruptState:
        return None
    if raw is None or not isinstance(raw.get("host"), str):
        return None
    return raw


def host_of(data: Path, wid: str) -> str | None:
    rec = record(data, wid)
    return rec["host"] if rec is not None else None


def write_record(data: Path, wid: str, host: str, **fields: Any) -> None:
    store.write_json(record_file(data, wid), {"v": FORMAT, "id": wid, "host": host, **fields})


@contextlib.contextmanager
def starting(data: Path, wid: str, host: str, runner: str) -> Iterator[None]:
    """The record written before the worker starts (one that speaks its contract at once is
    already the home's to serve); a start that fails puts back the one before, or none."""
    before = record(data, wid)
    write_record(data, wid, host, started_at=None, runner=runner, over=False)
    try:
        yield
    except BaseException:
        if before is None:
            store.remove(record_file(data, wid))
        else:
            store.write_json(record_file(data, wid), before)
        raise


def records(data: Path) -> dict[str, dict[str, Any]]:
    got = store.json_objects(str(workers_dir(data)))
    return {w: r for w, r in got.items() if isinstance(r.get("host"), str)}


ENDS = ("exited", "killed")  # how a worker away ended, as the home's record keeps it


def mark_over(data: Path, wid: str, exit_code: object, ended: object = "exited") -> None:
    """The worker is over; `exit_code` and how it `ended` (exited or killed: its outcome's
    facts, loop/ended.py) as its host said them (outside input: kept when they are an exit
    status and one of ENDS, else unknown and exited)."""
    rec = record(data, wid)
    if rec is not None and not rec.get("over"):
        rec["over"] = True
        rec["exit_code"] = untrusted.exit_code(exit_code)
        rec["ended"] = ended if ended in ENDS else "exited"
        store.write_json(record_file(data, wid), rec)


def remote_worker(data: Path) -> Callable[[str], str | None]:
    """Who may speak over the web API (contract/requests.py's `allowed`): a worker the home
    started away from home (its record in hosts/workers/, written by the SSH and Kubernetes
    engines) that is not over."""

    def allowed(worker: str) -> str | None:
        rec = record(data, worker)
        if rec is None:
            return f"{worker} is no worker this home started away from home"
        if rec.get("over"):
            return f"worker {worker} is over: its contract is closed"
        return None

    return allowed


# -- placement: which host a worker goes to (choose)

UNLIMITED = 1 << 30


def loads(data: Path) -> list[tuple[AnyHost, int]]:
    live: dict[str, int] = {}
    for rec in records(data).values():
        if not rec.get("over"):
            live[rec["host"]] = live.get(rec["host"], 0) + 1
    return [(lookup(data, n), live.get(n, 0)) for n in names(data)]


def room(cap: int, live: int) -> int:
    return (cap if cap > 0 else UNLIMITED) - live


def check_room(data: Path, name: str) -> AnyHost:
    for h, n in loads(data):
        if h.name == name:
            if h.cap and n >= h.cap:
                raise HostError(
                    f"host {name} is full: {n} live workers (cap {h.cap}); kill one, raise "
                    f"its cap, or start the worker elsewhere"
                )
            return h
    return lookup(data, name)  # says there is no such host


def choose(data: Path, local_live: int, max_workers: int, home: bool = True) -> str:
    """The host with the most room left (LOCAL for the home), by one documented rule, SSH
    and Kubernetes hosts alike: each host's cap minus its live workers (a host without a cap
    counts as the home's `max_workers`, and an unlimited home as unlimited), the home counted
    as a host with `max_workers`; a tie goes to the home first, then to hosts in name order.
    Load is counted from the home's records, so placing costs no network round trip. With
    `--host NAME` (or a decision's `host`) a worker goes there, within its cap (check_room);
    with a repo it is placed by its repo first (remote/dispatch.py): a path stays home, a URL
    goes to a host (`home` False: the hosts only)."""
    best, best_room = LOCAL, room(max_workers, local_live) if home else -UNLIMITED
    for h, n in loads(data):
        r = room(h.cap or max_workers, n)
        if r > best_room:
            best, best_room = h.name, r
    if best_room <= 0:
        raise HostError(
            f"every host is full (the home's max_workers {max_workers} and each host's cap) "
            "— kill a worker or raise a cap"
            if home
            else "every host is full (each host's cap), and only a host clones a repo URL — "
            "kill a worker there or raise a cap"
        )
    return best
