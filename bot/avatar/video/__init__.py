"""Rendered avatar videos: persisted jobs, the worker that claims them, delivery (`jobs`)."""
