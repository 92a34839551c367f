"""Ingest: documents in, chunks written with the crash-safe write protocol (`writer`)."""
