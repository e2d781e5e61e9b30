"""The verb table: which module holds each verb, its aliases and old spellings.

Plain data, imported by the entry point (hot path) and the click root alike, so neither
imports the other."""

from __future__ import annotations

# Verb -> "module:attribute"; modules load only when their verb runs (keeps workers' calls fast).
COMMANDS: dict[str, str] = {
    "init": "looop.cli.lifecycle:init_cmd",
    "pulse": "looop.cli.lifecycle:pulse_cmd",
    "tick": "looop.cli.tickwork:tick_cmd",
    "up": "looop.cli.lifecycle:up_cmd",
    "down": "looop.cli.lifecycle:down_cmd",
    "status": "looop.cli.reads:status_cmd",
    "state": "looop.cli.reads:status_cmd",
    "journal": "looop.cli.reads:journal_cmd",
    "runs": "looop.cli.reads:runs_cmd",
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
    "ls": "looop.cli.workers:ls_cmd",
    "kill": "looop.cli.steermove:worker_kill",
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
# Second spellings: listed once, compactly, under the verbs in `looop --help`.
ALIASES = {
    "state": "status",
    "screenshot": "shot",
    "ss": "shot",
    "logs": "log",
    "w": "worker",
    "ls": "worker list",
    "kill": "worker kill",
}
# v1.0's second spelling of every `write` subcommand (`looop goal w ID BODY`), hidden in help.
WRITE_ALIAS = "w"
# Old spellings kept working but never shown.
HIDDEN = {"config": "completion", "satellite": "host"}
