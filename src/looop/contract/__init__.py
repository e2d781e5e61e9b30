"""The worker contract's home side: its verbs (which go home, which through a
box's door, which run without click), the doors' answers, and the runs they start."""
