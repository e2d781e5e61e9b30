"""The verb table: which module holds each verb, its line in `looop --help`, its aliases and
old spellings; and what the entry point hands every verb (`Entry`). Light: `looop --help`
reads it without loading a verb."""

from __future__ import annotations

import os
from collections.abc import Mapping

import click

from looop.home.clock import Clock, SystemClock


class Entry:
    """What the entry point hands every verb (click's context object): the environment and
    the clock, read once from the process — or given by a test."""

    __slots__ = ("clock", "env")

    def __init__(self, env: dict[str, str], clock: Clock | None = None) -> None:
        self.env = env
        self.clock = clock if clock is not None else SystemClock(env.get("TZ"))


def _entry() -> Entry:
    c = click.get_current_context(silent=True)
    found = c.find_object(Entry) if c is not None else None
    return found if found is not None else Entry(dict(os.environ))


def process_env() -> dict[str, str]:
    """The environment the entry point was given (this process's when run for real)."""
    return _entry().env


def process_clock(env: Mapping[str, str]) -> Clock:
    """The clock the entry point was given (the real one, in TZ's zone, when run for real)."""
    return _entry().clock


# Verb -> "module:attribute"; modules load only when their verb runs (keeps workers' calls fast).
COMMANDS: dict[str, str] = {
    "init": "looop.cli.lifecycle:init_cmd",
    "pulse": "looop.cli.lifecycle:pulse_cmd",
    "tick": "looop.cli.tickwork:tick_cmd",
    "up": "looop.cli.lifecycle:up_cmd",
    "down": "looop.cli.lifecycle:down_cmd",
    "status": "looop.cli.status:status_cmd",
    "state": "looop.cli.status:status_cmd",
    "journal": "looop.cli.reads:journal_cmd",
    "runs": "looop.cli.runs:runs_cmd",
    "help": "looop.cli.reads:help_cmd",
    "version": "looop.cli.reads:version_cmd",
    "demo": "looop.cli.lifecycle:demo_cmd",
    "completion": "looop.cli.completion:completion_cmd",
    "config": "looop.cli.completion:config_cmd",
    "cost": "looop.cli.cost:cost_cmd",
    "ask": "looop.cli.mailbox:ask_cmd",
    "asks": "looop.cli.mailbox:asks_cmd",
    "answer": "looop.cli.mailbox:answer_cmd",
    "needs": "looop.cli.needs:needs_cmd",
    "tell": "looop.cli.mailbox:tell_cmd",
    "told": "looop.cli.mailbox:told_cmd",
    "claim": "looop.cli.leasecmd:claim_cmd",
    "unclaim": "looop.cli.leasecmd:unclaim_cmd",
    "worker": "looop.cli.workers:worker_group",
    "w": "looop.cli.workers:worker_group",
    "ls": "looop.cli.needs:ls_cmd",
    "kill": "looop.cli.steermove:worker_kill",
    "diff": "looop.cli.workers:worker_diff",
    "shot": "looop.cli.sessionwatch:shot_cmd",
    "screenshot": "looop.cli.sessionwatch:shot_cmd",
    "ss": "looop.cli.sessionwatch:shot_cmd",
    "log": "looop.cli.sessionwatch:log_cmd",
    "logs": "looop.cli.sessionwatch:log_cmd",
    "send": "looop.cli.sessions:send_cmd",
    "key": "looop.cli.sessions:key_cmd",
    "expect": "looop.cli.sessionwatch:expect_cmd",
    "wait": "looop.cli.sessionwatch:wait_cmd",
    "wait-idle": "looop.cli.sessionwatch:wait_idle_cmd",
    "resize": "looop.cli.sessions:resize_cmd",
    "restart": "looop.cli.sessions:restart_cmd",
    "attach": "looop.cli.sessions:attach_cmd",
    "watch": "looop.cli.watch:watch_cmd",
    "detach": "looop.cli.sessions:detach_cmd",
    "prune": "looop.cli.sessions:prune_cmd",
    "worktrees": "looop.cli.worktrees:worktrees_cmd",
    "review": "looop.cli.review:review_cmd",
    "land": "looop.cli.land:land_cmd",
    "flag": "looop.cli.sessions:flag_cmd",
    "unflag": "looop.cli.sessions:unflag_cmd",
    "goal": "looop.cli.steer:goal_group",
    "sensor": "looop.cli.steer:sensor_group",
    "playbook": "looop.cli.steer:playbook_group",
    "run": "looop.cli.steer:run_cmd",
    "schedule": "looop.cli.schedule:schedule_group",
    "web": "looop.cli.web:web_cmd",
    "mcp": "looop.cli.mcpcmd:mcp_cmd",
    "service": "looop.cli.service:service_group",
    "doctor": "looop.cli.doctor:doctor_cmd",
    "pod": "looop.cli.pod:pod_group",
    "host": "looop.cli.hosts:host_group",
    "satellite": "looop.cli.satellite:satellite_cmd",
}
# Each verb `looop --help` lists -> its one line there (its help's first sentence, which
# tests/unit/cli/test_help_examples.py holds to the command's own): the list loads no verb.
SHORT: dict[str, str] = {
    "init": "Choose the agent CLI that decides and works (writes the config).",
    "pulse": "Run the loop in the foreground (for systemd, containers, debugging).",
    "tick": "Run one beat now (refused while a pulse runs).",
    "up": "Start the pulse in the background (idempotent).",
    "down": "Stop the pulse (its beat finishes first), then every worker.",
    "status": "Pulse, last beat, failures and goals at a glance (pure read).",
    "journal": "Print the journal (one line per executed move).",
    "runs": "List recent decide runs, `runs show ID` for one, or `runs replay [ID…]` to send "
    "recorded prompts to another decider (--runner, --command, --playbook) and compare its "
    "moves with the recorded ones; nothing is executed.",
    "help": (
        "Print the manual (through $PAGER or less on a terminal), one section of it (`looop "
        "help sandbox`), or the help of one verb (`looop help worker start`)."
    ),
    "version": "Print the version.",
    "demo": "An offline demo in a throwaway data dir (scripted runner).",
    "completion": 'Print a shell completion script: eval "$(looop completion zsh)".',
    "cost": (
        "Spend report: looop cost [today|week|all] [--by kind|runner|worker|model|day] [--json]."
    ),
    "ask": "Ask a human and wait: prints only the answer on stdout.",
    "asks": "List pending asks (LIVE: the worker waits; STRANDED: it is gone).",
    "answer": "Answer a pending ask (TEXT, words joined, or - for stdin).",
    "needs": (
        "What waits on you: pending asks, workers at an approval prompt or idle at their input "
        "box, paused at a budget or a usage limit, held starts, stalled workers; each with its "
        "answer."
    ),
    "tell": "Queue a message for a live worker; it reads it with `looop told`.",
    "told": "Print (once) what was told to WORKER (default $LOOOP_SESSION_ID).",
    "claim": "Take a lease atomically; exit 1 if a live session holds it.",
    "unclaim": "Release a lease (exit 1 if another live session holds it).",
    "worker": "Start, list or kill workers (agents in PTY sessions).",
    "shot": "Print a session's current screen (a dead one replays its log).",
    "log": "Print a session's output (ANSI stripped unless --raw).",
    "send": "Type TEXT into a session, then press Enter (CR) unless -n.",
    "key": "Send named keys to a session, in order (names are case-insensitive).",
    "expect": (
        "Block until REGEX appears (exit 0), the session ends (1) or the timeout passes (124)."
    ),
    "wait": "`looop wait ID`: block until a session ends (its exit code).",
    "wait-idle": "Block until the session's output has been quiet for --settle.",
    "resize": "Resize a session's terminal: COLSxROWS (the program sees SIGWINCH).",
    "restart": (
        "Restart a session's command (the log keeps growing); a worker with a recorded agent "
        "conversation starts again on it, dead or alive."
    ),
    "attach": "Attach this terminal to a session; Ctrl-\\ twice (or --detach-keys) detaches.",
    "watch": (
        "Full-screen view: a session's terminal (a remote worker's screen, asked of its host) "
        "plus the pulse, next beat, spend, asks and worker health."
    ),
    "detach": "Detach every terminal attached to a session.",
    "prune": (
        "Remove every finished worker session now (transcripts included); a stopped pulse's log "
        "is kept: it says why it stopped."
    ),
    "worktrees": (
        "List the worktrees of workers that no longer run: id, path, branch, dirty or clean, "
        "kept for how long, when it expires (a dirty one is saved as a patch first)."
    ),
    "review": (
        "Review worker ID's change: its commits, the diff against its base (stat, then hunks), "
        "whether its verify passed, its own summary and the comment rounds sent back."
    ),
    "land": (
        "Land worker ID's change as your last `looop review ID` showed it: merge its branch "
        "into its base in your repository (a fast-forward or a merge commit, as land.merge "
        "configures), or push it and open a pull request (--pr, land.pr_command)."
    ),
    "flag": "Raise a ⚑ on a worker: it needs a human (wakes the pulse once).",
    "unflag": "Lower a worker's ⚑.",
    "goal": "Write, remove (archive) or list goals (the desired state).",
    "sensor": "Write, remove, list or run sensors (scripts printing the world as JSON).",
    "playbook": "Replace the PLAYBOOK or list its history.",
    "run": "Run one shell command as a move (journaled, WAL'd, timed out).",
    "schedule": "Durable wake-ups: once, every N, or a cron line in a time zone.",
    "web": "Serve the dashboard and the JSON API (prints one URL with a token).",
    "mcp": (
        "Serve looop to an agent over MCP on stdin/stdout: resources (state, goals, journal, "
        "runs, asks, workers, a worker's screen) and tools."
    ),
    "service": "Run the pulse for good under systemd (or launchd on macOS).",
    "doctor": (
        "Check what a run depends on: config, runner CLI, data dir, sandbox, budget, model "
        "endpoint, hosts, web, service."
    ),
    "host": "Hosts that run workers, over SSH or as Kubernetes Jobs: add, ls, rm, check, install.",
}
# Second spellings: listed once, compactly, under the verbs in `looop --help`.
ALIASES = {
    "state": "status",
    "screenshot": "shot",
    "ss": "shot",
    "logs": "log",
    "w": "worker",
    "ls": "worker list",
    "kill": "worker kill",
    "diff": "worker diff",
}
# v1.0's second spelling of every `write` subcommand (`looop goal w ID BODY`), hidden in help.
WRITE_ALIAS = "w"
# Old spellings kept working but never shown.
HIDDEN = {"config": "completion", "satellite": "host"}
