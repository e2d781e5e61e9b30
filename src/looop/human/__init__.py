"""The human's side of the loop: the mailbox (asks and answers, each file whole or absent),
durable schedules (one-shot, every, cron) and notifications (the `notification` hook and
apprise URLs). Each is a folder of small JSON files another process can read at any time;
claims and tells, which the worker contract's verbs serve without click, live in home/."""
