"""Opening the state store: migrations, the settings that choose the database, the key."""

from __future__ import annotations

import stat
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from cryptography.fernet import Fernet

from bot.config import load_settings
from bot.store import SqlStore, open_store, retention_cutoff
from bot.store.migrate import MIGRATIONS, current_revision, head_revision
from bot.store.schema import metadata
from bot.store.sealing import KEY_FILE


async def test_migrations_build_exactly_the_schema_the_code_uses(any_store: SqlStore) -> None:
    async with any_store._tx() as c:
        diff = await c.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
        )
    assert diff == []
    assert await current_revision(any_store._engine) == head_revision()  # type: ignore[arg-type]
    await any_store.close()
    await any_store.start()  # a restart finds the schema at head and changes nothing
    assert await current_revision(any_store._engine) == head_revision()  # type: ignore[arg-type]


def test_migrations_ship_inside_the_package() -> None:
    assert MIGRATIONS.is_relative_to(Path(__file__).parents[1] / "bot" / "store")
    assert (MIGRATIONS / "env.py").is_file()
    assert list((MIGRATIONS / "versions").glob("0001_*.py"))


async def test_default_is_sqlite_in_the_data_dir_with_a_private_key_file(
    tmp_path: Path,
) -> None:
    settings = load_settings(avatarbot_data_dir=tmp_path, database_url=None)
    async with open_store(settings) as store:
        assert store.dialect == "sqlite"
        await store.claim_live_scope("user:U1", "liveavatar", "r1", 60)
        await store.update_live_session("user:U1", "r1", session={"token": "sk-1"})
    assert (tmp_path / "state.db").is_file()
    key_file = tmp_path / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    first_key = key_file.read_bytes()

    # a restart (or a second process) reuses the key and reads the session back
    async with open_store(settings) as store:
        record = await store.get_live_session("user:U1")
        assert record is not None and record.session == {"token": "sk-1"}
    assert key_file.read_bytes() == first_key


async def test_secret_key_setting_rotates_without_losing_sessions(tmp_path: Path) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    async with open_store(load_settings(avatarbot_data_dir=tmp_path, store_secret_key=old)) as s:
        await s.claim_live_scope("user:U1", "liveavatar", "r1", 60)
        await s.update_live_session("user:U1", "r1", session={"token": "sk-1"})
    assert not (tmp_path / KEY_FILE).exists()

    rotated = load_settings(avatarbot_data_dir=tmp_path, store_secret_key=f"{new},{old}")
    async with open_store(rotated) as s:
        record = await s.get_live_session("user:U1")
        assert record is not None and record.session == {"token": "sk-1"}
    assert "sk-" not in repr(rotated) and new not in repr(rotated)


def test_database_url_selects_postgresql_and_hides_the_password(tmp_path: Path) -> None:
    settings = load_settings(
        avatarbot_data_dir=tmp_path,
        database_url="postgresql://bot:hunter2@db.internal:5432/avatarbot",
        store_secret_key="a long random passphrase",
    )
    store = open_store(settings)
    assert store.dialect == "postgresql"
    assert store.url.drivername == "postgresql+asyncpg"
    assert "hunter2" not in repr(store) and "hunter2" not in store.where


def test_retention_cutoff() -> None:
    settings = load_settings()
    assert settings.retention_days == 30
    assert retention_cutoff(settings, now=100 * 86_400) == 70 * 86_400
    assert retention_cutoff(load_settings(retention_days=7), now=10 * 86_400) == 3 * 86_400


def test_sql_store_implements_every_store_method_with_its_signature() -> None:
    import inspect

    from bot.store import Store

    for name, member in vars(Store).items():
        if name.startswith("_") or not callable(member):
            continue
        ours = getattr(SqlStore, name, None)
        assert ours is not None, f"SqlStore lacks {name}"
        expected = list(inspect.signature(member).parameters)
        assert list(inspect.signature(ours).parameters) == expected, name


def test_racing_first_starts_agree_on_one_key_file(tmp_path: Path) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from bot.store.sealing import key_file_key

    start = threading.Barrier(8)

    def first_start() -> bytes:
        start.wait()
        return key_file_key(tmp_path)

    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: first_start(), range(8)))
    assert keys == {(tmp_path / KEY_FILE).read_bytes().strip()}
    assert [p.name for p in tmp_path.iterdir()] == [KEY_FILE]  # no temporary files left


async def test_the_store_fixture_others_use_is_ready(store: SqlStore) -> None:
    await store.ping()
    assert store.dialect == "sqlite"
    assert await store.claim_once("slack-event", "Ev1", 60)
    assert not await store.claim_once("slack-event", "Ev1", 60)
