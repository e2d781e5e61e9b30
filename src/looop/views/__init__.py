"""The read views: `looop status`, `ls`, `needs`, outcomes and the beats as
events.jsonl tells them; what every face (the CLI, the web, the watch screen) shows."""
