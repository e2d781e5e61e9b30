"""The beat and the pulse. `tick` is one beat as a row of gates, then one decide (`deciding`,
loaded only when the world changed, and its settling); `pulse` is the long-running process that
beats on a cadence (its signs of life, its memory for soaks and the temps a killed write left:
`heartbeat`), and `daemon` its `up`/`down` under a supervisor with a heartbeat watchdog. Around
them: the world hash (`world`), backoff, failure memory and the coalesce window (`guards`), flap
damping, alerts and provider limits (`alerts`; one hit, and the fleet's usage windows:
`windowwork`), worker metering (`workmeter`, reading each CLI's own records or a custom
worker's own reports with `clirecords`), housekeeping, `doctor` and init (`setup`)."""
