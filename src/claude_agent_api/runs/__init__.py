"""Runs: one prompt being answered inside a session — request schemas, run manager, events, streaming."""
