"""The sandbox: every box looop starts (a worker, run_shell, a sensor, a verify, the
decider) wrapped by srt, its network through the home's filter, its door home."""
