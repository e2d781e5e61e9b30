"""Spend control that only the pulse and the full CLI use: `meter` (reads a runner's stream)
and `report` (the `looop cost` report as data; cli/mailbox.py renders it). The light readers a
verb needs live in `looop.spend`."""
