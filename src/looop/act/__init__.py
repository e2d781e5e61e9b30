"""The only place side effects happen. Each action is one declaration in `moves/` (a frozen
dataclass: its tag, kind, the prompt's teaching of it, parse, summary and `perform`); a class
that leaves one out is refused when it is declared, and is abstract to mypy. `actiontable`
lists them all (tag -> module and class) in the order the prompt teaches them: the parser
(`parse`, one-line refusals) loads a class by its tag when that tag is first used (a `looop
kill` loads only `moves/kill`), and the prompt's reference of the actions is the table's own
(`taught`). The executor calls `perform` and, only once it returned, stamps and journals; the
write-ahead records make a crashed move reported once and never repeated (`wal`).

`shell` runs `run_shell`; `shellgate` is the gate every shell text a move carries passes, with
`shellguard/`, the tripwire, and `protected`, what it must never touch. `landing` is the one
side effect no action names: a human's `looop land` (its config and its pull request
`landpr`), checked whole, then done under a WAL record and journaled."""
