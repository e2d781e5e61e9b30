"""The actions, each one whole declaration (act/decision.py), grouped by what they move; the
table that lists them all is act/actiontable.py."""
