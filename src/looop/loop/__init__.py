"""The beat and the pulse. `tick` is one beat as a row of gates, then one decide (`deciding`,
loaded only when the world changed, and its settling); `pulse` is the long-running process that
beats on a cadence (its signs of life: `heartbeat`; its memory for soaks: `pulsememory`; the
temps a killed write left: `temps`), and `daemon` its `up`/`down` under a supervisor with a
heartbeat watchdog. Around them: the world hash (`world`), backoff and failure memory
(`guards`), flap damping, the coalesce window (`coalescewindow`), provider limits (`limited`;
one hit, and the fleet's usage windows: `windowwork`), worker metering (`workmeter`, reading
each CLI's own records with `clirecords` and a custom worker's own reports with `reported`),
housekeeping, alerts, `doctor` and `init` (`setup`)."""
