"""Bolt listeners, one module per kind of request; each parses, calls a service, replies."""
