"""The home: the data dir's model — where it is, its paths, config and knobs, store, locks,
clock, errors, event names, hashing and session files; the ground floor, importing no other
room. See docs/ARCHITECTURE.md."""
