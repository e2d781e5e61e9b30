"""`looop host add|ls|rm|check|install` (SSH and Kubernetes hosts for workers), and the hidden
plumbing `looop host relay` (the home end of a host's contract channel); `looop satellite`, what
the home runs on a host, is cli/satellite.py. See docs/HOSTS.md and docs/KUBERNETES.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

import looop
from looop.cli.app import from_config, make_ctx, progress_line, show_rows
from looop.home import jsonio
from looop.home.errors import LooopError
from looop.remote import hosts as reg
from looop.remote import tokens
from looop.remote.kube.backend import check
from looop.remote.kube.cluster import load_client
from looop.remote.ssh.install import Build, install
from looop.remote.ssh.link import PROTOCOL, link
from looop.remote.ssh.relay import serve
from looop.sandbox.srt import srt_program

host_group = click.Group(
    "host",
    help="Hosts that run workers, over SSH or as Kubernetes Jobs: add, ls, rm, check, install.",
)


_KUBE_ONLY = "image kubeconfig secret_env cpu memory deadline ttl pod_template"


@host_group.command(
    "add",
    help="Register host NAME at ssh://user@host[:port], or k8s://CONTEXT/NAMESPACE with --image.",
)
@click.argument("name")
@click.argument("url")
@click.option(
    "--cap", type=click.IntRange(0, reg.MAX_CAP), default=0, help="Most workers (0: none)."
)
@click.option("--ssh-config", default=None, metavar="FILE", help="ssh -F FILE for this host.")
@click.option("--image", default=None, help="k8s: the worker image (it carries looop).")
@click.option("--kubeconfig", default=None, metavar="FILE", help="k8s: this kubeconfig file.")
@click.option("--secret-env", default=None, metavar="SECRET", help="k8s: a Secret passed as env.")
@click.option(
    "--pod-template",
    default=None,
    metavar="FILE",
    help="k8s: a YAML patch of each pod's spec (docs/KUBERNETES.md).",
)
@click.option(
    "--git-secret", default=None, metavar="SECRET", help="k8s: clone with its username/password."
)
@click.option("--cpu", default=None, metavar="Q", help="k8s: each pod's CPU (e.g. 500m, 2).")
@click.option("--memory", default=None, metavar="Q", help="k8s: each pod's memory (e.g. 2Gi).")
@click.option(
    "--deadline", type=int, default=None, metavar="SECONDS", help="k8s: a Job's longest run."
)
@click.option(
    "--ttl", type=int, default=None, metavar="SECONDS", help="k8s: how long a finished pod stays."
)
def host_add(
    name: str,
    url: str,
    cap: int,
    ssh_config: str | None,
    image: str | None,
    deadline: int | None,
    ttl: int | None,
    **kube: str | None,
) -> None:
    ctx = make_ctx(events_to=None)
    given = click.get_current_context().params
    h: reg.AnyHost
    if not url.startswith("k8s://"):
        extra = [k for k in _KUBE_ONLY.split() if given.get(k) is not None]
        if extra:
            raise click.UsageError(
                f"--{extra[0].replace('_', '-')} is for a Kubernetes host (k8s://CONTEXT/"
                "NAMESPACE), not an SSH one"
            )
        h = reg.add(ctx.paths.data, name, url, cap, ssh_config)
    elif ssh_config is not None:
        raise click.UsageError(
            "--ssh-config is for an SSH host, not a Kubernetes one (--kubeconfig)"
        )
    elif image is None:
        raise click.UsageError(
            f"host {name}: a Kubernetes host needs --image IMAGE (the worker image, with looop "
            "in it: deploy/Dockerfile)"
        )
    else:
        h = reg.kube_host(
            ctx.paths.data,
            name,
            url,
            image=image,
            cap=cap,
            deadline_s=reg.DEFAULT_DEADLINE_S if deadline is None else deadline,
            ttl_s=reg.DEFAULT_TTL_S if ttl is None else ttl,
            **kube,  # kubeconfig, secret_env, cpu, memory, pod_template, git_secret
        )
        load_client()  # without the extra: the one line that says how to get it
        reg.save(ctx.paths.data, h)
    said = f"added host {h.name} {h.url}" + (f" image {h.image}" if h.image else "")
    click.echo(said + (f" (cap {h.cap})" if h.cap else "") + f"\n  next: looop host check {h.name}")


@host_group.command("ls", help="List the registered hosts and their workers.")
@click.option("--json", "as_json", is_flag=True)
def host_ls(as_json: bool) -> None:
    ctx = make_ctx(events_to=None)
    rows = [
        {"name": h.name, "kind": h.kind, "url": h.url, "image": h.image, "cap": h.cap, "workers": n}
        for h, n in reg.loads(ctx.paths.data)
    ]

    def line(r: dict[str, Any]) -> str:
        cap = str(r["cap"]) if r["cap"] else "-"
        image = f" image {r['image']}" if r["image"] else ""
        name = f"{r['name']:<16} {r['kind']:<4} {r['url']:<40}"
        return f"{name} cap {cap:<5} workers {r['workers']}{image}"

    empty = (
        "no hosts — `looop host add NAME ssh://user@host` or "
        "`looop host add NAME k8s://CONTEXT/NAMESPACE --image IMAGE`"
    )
    show_rows(rows, as_json, empty, line, sort_keys=True)


@host_group.command("rm", help="Forget host NAME (and close its connection).")
@click.argument("name")
@click.option("--force", is_flag=True, help="Even while it runs workers.")
def host_rm(name: str, force: bool) -> None:
    ctx = make_ctx(events_to=None)
    h = reg.lookup(ctx.paths.data, name)
    live = [
        w for w, r in reg.records(ctx.paths.data).items() if r["host"] == name and not r.get("over")
    ]
    if live and not force:
        raise LooopError(
            f"host {name} runs {len(live)} worker(s) ({', '.join(live[:5])}) — kill them "
            "first, or `looop host rm --force` leaves them running there unwatched"
        )
    if isinstance(h, reg.Host):
        link(ctx, name).stop_master()
    reg.remove(ctx.paths.data, name)
    click.echo(f"removed host {name}")


@host_group.command(
    "rotate-tokens", help="A new key for worker tokens: every token handed to a pod so far is void."
)
@click.option("--force", is_flag=True, help="Even while workers in pods hold tokens.")
def host_rotate_tokens(force: bool) -> None:
    ctx = make_ctx(events_to=None)
    data = ctx.paths.data
    kinds = {n: reg.host_kind(data, n) for n in reg.names(data)}
    holders = [
        w
        for w, r in reg.records(data).items()
        if not r.get("over") and kinds.get(r["host"]) == reg.K8S
    ]
    if holders and not force:
        raise LooopError(
            f"{len(holders)} worker(s) in pods hold a token ({', '.join(holders[:5])}): their "
            "ask, claim and cost would be refused from now on — kill them first, or "
            "`looop host rotate-tokens --force`"
        )
    tokens.rotate(ctx.paths)
    click.echo("worker tokens rotated: every token handed out before now is void")


@host_group.command(
    "check",
    help="SSH: connect to NAME and check the looop installed there. Kubernetes: the context "
    "loads, the API answers, the namespace's Jobs can be listed.",
)
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def host_check(name: str, as_json: bool) -> None:
    ctx = make_ctx(events_to=None)
    h = reg.lookup(ctx.paths.data, name)
    if isinstance(h, reg.KubeHost):
        got = check(ctx.paths.data, h, ctx.clock, ctx.env)
        if as_json:
            click.echo(jsonio.dumps(got, sort_keys=True))
        else:
            click.echo(
                f"{name}: ok — {h.url} answers (context {got['context']}); its Jobs can be "
                f"listed: {got['live']} live worker(s) of this home"
            )
        return
    lk = link(ctx, name)
    hello = lk.call("hello", {})
    theirs = hello.get("version")
    ok = theirs == looop.__version__ and hello.get("protocol") == PROTOCOL
    gone = hello.get("sandbox_missing")
    gone = [str(g) for g in gone] if isinstance(gone, list) else []
    needed = from_config(ctx, lambda cfg: cfg.decider().on, False)  # its workers sandboxed
    if as_json:
        said = {"host": name, "ok": ok, "sandbox_ready": ok and not gone, **hello}
        click.echo(jsonio.dumps(said, sort_keys=True))
    elif ok:
        click.echo(
            f"{name}: ok — looop {theirs} (Python {hello.get('python')}), {hello.get('dir')}"
        )
        click.echo(f"  {_sandbox_line(name, gone, needed)}")
    if not ok:
        raise LooopError(
            f"host {name} runs looop {theirs}, this home {looop.__version__} — "
            f"run `looop host install {name}`"
        )
    if gone and needed:
        raise SystemExit(1)  # the config's workers run sandboxed: they cannot start there


def _sandbox_line(name: str, gone: list[str], needed: bool) -> str:
    """What `host check` says of srt there: ready, or each thing missing and how to fix it."""
    if not gone:
        return "sandbox: ready (srt runs sandboxed workers there)"
    srt = f"srt (`looop host install {name}` copies this machine's)"
    fixes = [srt if g.split(" ", 1)[0] == "srt" else g for g in gone]
    who = "the config's workers run sandboxed: " if needed else ""
    return (
        f"sandbox: cannot run srt there — missing {'; '.join(fixes)}. {who}fix it, or start "
        f"workers there with --no-sandbox"
    )


@host_group.command("install", help="Install this looop into a user-level venv on SSH host NAME.")
@click.argument("name")
@click.option("--wheel", type=click.Path(dir_okay=False, path_type=Path), default=None)
def host_install(name: str, wheel: Path | None) -> None:
    ctx = make_ctx(events_to=None)
    h = reg.lookup(ctx.paths.data, name)
    if isinstance(h, reg.KubeHost):
        raise LooopError(
            f"host {name} is a Kubernetes host: nothing to install — its image {h.image} "
            "carries looop (build it from deploy/Dockerfile)"
        )

    build = Build(looop.__version__, looop.__file__)
    where, said = install(
        link(ctx, name), wheel, build, srt_program(dict(ctx.env)), progress_line()
    )
    click.echo(f"installed looop on {name} in {where}")
    for line in said:  # what srt needs there: done, or how to do it
        click.echo(f"  {line}")
    click.echo(f"  next: looop host check {name}")


@host_group.command("relay", hidden=True)
@click.argument("name")
@click.argument("path")
def host_relay(name: str, path: str) -> None:
    ctx = make_ctx(events_to=None)
    reg.get(ctx.paths.data, name)
    raise SystemExit(serve(ctx, name, path))
