"""The hot room: the console entry, the fast verbs' parsing and work, and the light readers
they share. See docs/ARCHITECTURE.md."""
