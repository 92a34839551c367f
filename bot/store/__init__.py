"""Persisted state shared by every process and replica (see `bot.store.base`)."""
