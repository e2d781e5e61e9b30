"""Workers: agent CLIs launched in PTY sessions with the worker contract."""
