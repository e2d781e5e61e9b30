"""Examples for every verb's --help, and the words for its --json: one table, put on each
command as its epilog when the click root loads it (cli/root.py). Only --help pays for it.

tests/unit/cli/test_help_examples.py walks the click tree: a verb with no entry here (and no
epilog of its own) fails it, and so does an example that does not name its own verb."""

from __future__ import annotations

import click

# Command path (a group's name, then its subcommand's; aliases share their verb's entry) ->
# lines a user can paste. A comment after "  # " says what the line does.
EXAMPLES: dict[str, tuple[str, ...]] = {
    "": ("looop init --runner claude && looop doctor", "looop up && looop status"),
    "answer": ("looop answer fix-ci-1 yes", "looop answer fix-ci-1 - < reply.txt"),
    "ask": ('looop ask fix-ci --prompt "merge now?" --options yes,no  # prints only the answer',),
    "asks": ("looop asks", "looop asks --json | jq -r '.[].id'"),
    "attach": (
        "looop attach fix-ci  # Ctrl-\\ twice detaches",
        "looop attach fix-ci --detach-keys ctrl-x,d",
    ),
    "claim": ("looop claim deploy --session fix-ci || echo 'someone else deploys'",),
    "completion": (
        'eval "$(looop completion bash)"  # add to ~/.bashrc',
        'looop completion zsh > "${fpath[1]}/_looop"',
    ),
    "cost": (
        "looop cost",
        "looop cost week --by worker",
        "looop cost report worker fix-ci claude 0.42  # a worker reports its spend",
    ),
    "demo": ("looop demo --fast",),
    "needs": ("looop needs", "looop needs --json | jq -r '.[].answer'"),
    "mcp": (
        "looop mcp  # read-only: an agent reads state, asks, workers",
        '{"mcpServers": {"looop": {"command": "looop", "args": ["mcp", "--allow-actions"]}}}',
    ),
    "detach": ("looop detach fix-ci",),
    "doctor": ("looop doctor", "looop doctor --json | jq '.[] | select(.ok | not)'"),
    "down": ("looop down", "looop down --keep-workers"),
    "expect": ("looop expect fix-ci 'tests passed' --timeout 600",),
    "flag": ('looop flag fix-ci "needs a key for the staging DB"',),
    "goal": ('looop goal write ship "goal: v1 is tagged"', "looop goal list"),
    "goal archive": ("looop goal archive ship",),
    "goal list": ("looop goal list", "looop goal list --json"),
    "goal rm": ("looop goal rm ship",),
    "goal write": (
        'looop goal write ship "goal: v1 is tagged and released"',
        "looop goal write ship - < ship.md",
    ),
    "help": ("looop help", "looop help worker start"),
    "host": ("looop host add gpu1 ssh://me@gpu1", "looop host ls"),
    "host add": (
        "looop host add gpu1 ssh://me@gpu1 --cap 4",
        "looop host add k1 k8s://my-context/agents --image ghcr.io/me/agent:1",
    ),
    "host check": ("looop host check gpu1",),
    "host install": ("looop host install gpu1",),
    "host ls": ("looop host ls", "looop host ls --json"),
    "host rm": ("looop host rm gpu1",),
    "host rotate-tokens": ("looop host rotate-tokens --force",),
    "init": (
        "looop init --runner claude",
        "looop init --runner custom --tick-command ./decide.sh --worker-command "
        "'./work.sh {{prompt_file}}'",
    ),
    "journal": ("looop journal -n 20", "looop journal -f"),
    "key": ("looop key fix-ci C-c", "looop key fix-ci Down Down Enter"),
    "log": ("looop log fix-ci", "looop log -f -n 50 fix-ci  # the last 50 lines, then follow"),
    "playbook": ("looop playbook write - < PLAYBOOK.md", "looop playbook history"),
    "playbook history": ("looop playbook history",),
    "playbook write": ("looop playbook write - < PLAYBOOK.md",),
    "prune": ("looop prune --dry-run", "looop prune"),
    "worktrees": ("looop worktrees", "looop worktrees --json"),
    "review": (
        "looop review fix-ci",
        "looop review fix-ci --comment src/app.py:12 'check for None here' --send",
        "looop review fix-ci --comment-all 'add a test for the empty case' --send",
    ),
    "land": (
        "looop land fix-ci",
        "looop land fix-ci --pr",
        "looop land fix-ci --at 3f2a9c1",
        "looop land fix-ci --pick 2  # of fix-ci.1, fix-ci.2 …: the others stop",
    ),
    "pulse": ("looop pulse  # in the foreground: for systemd, a container or debugging",),
    "resize": ("looop resize fix-ci 120x40",),
    "restart": ("looop restart fix-ci",),
    "run": ('looop run "make test" --reason "check main before the release"',),
    "runs": ("looop runs", "looop runs show tick-20260621-100000"),
    "schedule": ("looop schedule write digest --cron '0 9 * * MON'", "looop schedule list"),
    "schedule drop": ("looop schedule drop digest",),
    "schedule list": ("looop schedule list", "looop schedule list --json"),
    "schedule write": (
        "looop schedule write digest --cron '0 9 * * MON' --tz Europe/Berlin --note 'weekly'",
        "looop schedule write recheck --in 30m",
    ),
    "shot": ("looop shot fix-ci", "looop shot fix-ci --json"),
    "send": ('looop send fix-ci "also run the linters"', "looop send -n fix-ci y"),
    "sensor": ("looop sensor write ci - < ci.sh", "looop sensor run"),
    "sensor add": (
        "looop sensor add --list",
        "looop sensor add git --repo ~/src/app",
        "looop sensor add http --url https://example.com/health",
        "looop sensor add tests --cmd 'pytest -q' --dir ~/src/app --every 600",
    ),
    "sensor list": ("looop sensor list",),
    "sensor rm": ("looop sensor rm ci",),
    "sensor run": ("looop sensor run", "looop sensor run ci --json"),
    "sensor write": ("looop sensor write ci - < ci.sh",),
    "service": ("looop service install --run", "looop service status"),
    "service install": ("looop service install --run  # write, enable and start the unit",),
    "service status": ("looop service status",),
    "service uninstall": ("looop service uninstall --run",),
    "status": ("looop status", "looop status --json | jq .health"),
    "tell": ('looop tell fix-ci "rebase on main first"',),
    "tick": ("looop tick --dry-run  # the prompt the next decide would get", "looop tick --force"),
    "told": ("looop told fix-ci",),
    "unclaim": ("looop unclaim deploy --session fix-ci",),
    "unflag": ("looop unflag fix-ci",),
    "up": ("looop up", "looop up --web"),
    "version": ("looop version",),
    "wait": ("looop wait fix-ci --timeout 3600", "looop wait --only-asks"),
    "wait-idle": ("looop wait-idle fix-ci --settle 5",),
    "watch": ("looop watch", "looop watch fix-ci"),
    "web": ("looop web", "looop web --url  # the running server's link"),
    "worker": ('looop worker start fix-ci "make CI green on main"', "looop worker list"),
    "worker continue": (
        "looop worker continue fix-ci  # resume a worker paused at its budget",
        "looop worker continue fix-ci --budget 10",
    ),
    "worker diff": ("looop worker diff fix-ci --stat", "looop diff fix-ci.1 fix-ci.3"),
    "worker show": ("looop worker show fix-ci", "looop worker show fix-ci --json | jq .health"),
    "worker unstall": ("looop worker unstall fix-ci  # after a look at why it kept failing",),
    "worker kill": ('looop kill fix-ci --reason "stuck on a prompt"', "looop worker kill fix-ci"),
    "worker list": ("looop ls", "looop ls -a --json", "looop worker list --json"),
    "worker start": (
        'looop worker start fix-ci "make CI green on main"',
        "looop worker start docs - --repo . --branch docs < brief.md",
        'looop worker start fix-ci "make CI green" --repo . --attempts claude,codex',
    ),
}

# What `--json` prints, for the verbs whose option says nothing of its own.
JSON_HELP: dict[str, str] = {
    "asks": "Print the pending asks as a JSON array (id, worker, prompt, options, age).",
    "cost": "Print the report as one JSON object (total, calls, groups, uncosted_calls).",
    "detach": "Print what was detached as JSON.",
    "needs": "Print the queue as a JSON array (kind, worker, host, since, what, answer, ref).",
    "expect": "Print the match (or why it stopped) as one JSON object.",
    "goal list": "Print the goals as a JSON array.",
    "host check": "Print each check as JSON.",
    "host ls": "Print the hosts and their workers as JSON.",
    "key": "Print what was sent as one JSON object.",
    "worker list": "Print the rows as a JSON array (the pulse first), every column and more.",
    "playbook history": "Print the earlier versions as a JSON array.",
    "resize": "Print the new size as one JSON object.",
    "restart": "Print the restarted session as one JSON object.",
    "runs": "Print the runs (or the one run) as JSON.",
    "sensor list": "Print the sensors as a JSON array.",
}


def epilog(key: str) -> str | None:
    lines = EXAMPLES.get(key)
    if not lines:
        return None
    # \b keeps click from rewrapping the lines into one paragraph
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


def attach(cmd: click.Command, key: str) -> None:
    """Give cmd (and a group's subcommands) its examples and --json words, where it has none.
    key: the verb's own spelling (`worker list` for `ls`: cli/commands.ALIASES)."""
    if cmd.epilog is None:
        cmd.epilog = epilog(key)
    for p in cmd.params:
        if isinstance(p, click.Option) and "--json" in p.opts and not p.help:
            p.help = JSON_HELP.get(key)
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            attach(sub, f"{key} {name}")
