"""Rendered avatar videos: the worker that claims jobs (`worker`) and the job itself (`job`:
state machine, delivery, exactly once)."""
