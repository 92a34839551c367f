"""`open_store(settings)`: the state store the settings describe (not yet started)."""

from __future__ import annotations

import time
from collections.abc import Callable

from bot.config import Settings
from bot.store.sealing import make_sealer
from bot.store.sql import SqlStore, sqlite_url

STATE_DB = "state.db"


def open_store(settings: Settings, *, clock: Callable[[], float] = time.time) -> SqlStore:
    """PostgreSQL when DATABASE_URL is set, else SQLite in <AVATARBOT_DATA_DIR>/state.db.

    Use `async with open_store(settings) as store:` or `await store.start()` /
    `await store.close()`; starting applies migrations.
    """
    secret = settings.store_secret_key
    sealer = make_sealer(secret.get_secret_value() if secret else None, settings.data_dir)
    url = settings.database_url.get_secret_value().strip() if settings.database_url else ""
    return SqlStore(url or sqlite_url(settings.data_dir / STATE_DB), sealer=sealer, clock=clock)


def retention_cutoff(settings: Settings, now: float | None = None) -> float:
    """The `older_than` for `Store.purge`: RETENTION_DAYS before now."""
    return (time.time() if now is None else now) - settings.retention_days * 86_400
