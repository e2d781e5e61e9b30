"""The home: what a home (a data dir and its config) is made of, read and written light — its
config, knobs, paths, store, locks, clock, claims and tells, the session files and the ledger
readers; the ground floor, on the standard library alone. See docs/ARCHITECTURE.md."""
