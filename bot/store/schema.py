"""The tables behind `SqlStore` (SQLAlchemy Core). Alembic migrations create them.

Strings have no length limit (VARCHAR on PostgreSQL, TEXT affinity on SQLite): ids and scopes
come from Slack, HeyGen and callers, and both databases must accept the same values.

A change here needs a new revision in `migrations/versions/`; `tests/test_store_migrations.py`
fails when the tables below and the migrated database disagree.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# "first writer wins" keys: Slack event ids, webhook deliveries
claims = sa.Table(
    "claims",
    metadata,
    sa.Column("namespace", sa.String, primary_key=True),
    sa.Column("key", sa.String, primary_key=True),
    sa.Column("expires_at", sa.Double, nullable=False),
)

answers = sa.Table(
    "answers",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("spoken", sa.Text, nullable=False),
    sa.Column("sources", sa.JSON, nullable=False),
    sa.Column("grounded", sa.Boolean, nullable=False),
    sa.Column("channel", sa.String, nullable=False),
    sa.Column("thread_ts", sa.String),
    sa.Column("message_ts", sa.String),
    sa.Column("asker", sa.String),
    sa.Column("team", sa.String),
    sa.Column("datasources", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("question_ts", sa.String),  # the question's message (history on a resume)
    sa.Column("stream_ts", sa.String),  # the streamed message, once chat.startStream answered
    # saved before answering (the intent): the text is not final until this is false
    sa.Column("pending", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index("ix_answers_thread", "channel", "thread_ts", "created_at"),
    sa.Index("ix_answers_created", "created_at"),
)

feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("answer_id", sa.String, primary_key=True),
    sa.Column("user", sa.String, primary_key=True),
    sa.Column("value", sa.String, nullable=False),
    sa.Column("comment", sa.Text),
    sa.Column("created_at", sa.Double, nullable=False),
)

bindings = sa.Table(
    "bindings",
    metadata,
    sa.Column("channel", sa.String, primary_key=True),
    sa.Column("datasource", sa.String, primary_key=True),
    sa.Column("created_by", sa.String, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
)

# Channels whose Slack threads are a knowledge source (`/knowledge add #channel`)
knowledge_channels = sa.Table(
    "knowledge_channels",
    metadata,
    sa.Column("channel", sa.String, primary_key=True),
    sa.Column("datasource", sa.String, nullable=False),
    sa.Column("private", sa.Boolean, nullable=False),
    sa.Column("added_by", sa.String, nullable=False),
    sa.Column("added_at", sa.Double, nullable=False),
)

# Per-channel settings (migration 0003_home): private answers.
channel_settings = sa.Table(
    "channel_settings",
    metadata,
    sa.Column("channel", sa.String, primary_key=True),
    sa.Column("private_answers", sa.Boolean, nullable=False),
    sa.Column("updated_by", sa.String, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
)

FINISHED_JOB_STATES = ("delivered", "failed")

video_jobs = sa.Table(
    "video_jobs",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("dedupe_key", sa.String, nullable=False),
    sa.Column("state", sa.String, nullable=False),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("script", sa.Text, nullable=False),
    sa.Column("answer_id", sa.String),
    sa.Column("target", sa.JSON, nullable=False),
    sa.Column("requested_by", sa.String),
    sa.Column("team", sa.String),
    sa.Column("heygen_video_id", sa.String),
    sa.Column("video_url", sa.Text),
    sa.Column("thumbnail_url", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("lease_owner", sa.String),
    sa.Column("lease_until", sa.Double, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
    # At most one unfinished job per dedupe key: the database, not a check-then-insert,
    # makes two replicas asking for the same video end up with one job.
    sa.Index(
        "ux_video_jobs_unfinished_dedupe",
        "dedupe_key",
        unique=True,
        sqlite_where=sa.text("state NOT IN ('delivered', 'failed')"),
        postgresql_where=sa.text("state NOT IN ('delivered', 'failed')"),
    ),
    sa.Index("ix_video_jobs_heygen", "heygen_video_id"),
    sa.Index("ix_video_jobs_state", "state", "created_at"),
)

live_sessions = sa.Table(
    "live_sessions",
    metadata,
    sa.Column("scope", sa.String, primary_key=True),
    sa.Column("backend", sa.String, nullable=False),
    sa.Column("session_id", sa.String),
    # AvatarRoom.to_record() as JSON, Fernet-encrypted (it holds tokens)
    sa.Column("session_sealed", sa.Text),
    sa.Column("state", sa.String, nullable=False),
    sa.Column("owner", sa.String),
    sa.Column("lease_until", sa.Double, nullable=False),
    sa.Column("started_at", sa.Double, nullable=False),
    sa.Column("last_activity_at", sa.Double, nullable=False),
    sa.Column("viewer_seen_at", sa.Double, nullable=False),
)

live_links = sa.Table(
    "live_links",
    metadata,
    sa.Column("token", sa.String, primary_key=True),
    sa.Column("scope", sa.String, nullable=False),
    # = scope while this is the scope's current link, NULL once replaced: the unique
    # constraint makes racing replicas agree on one current link per scope.
    sa.Column("current_for", sa.String, unique=True),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("expires_at", sa.Double, nullable=False),
)

speech_items = sa.Table(
    "speech_items",
    metadata,
    # ids never reused (SQLite AUTOINCREMENT): a stale id must not name a new row
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("scope", sa.String, nullable=False),
    sa.Column("answer_id", sa.String, nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("published_at", sa.Double),
    sa.Column("publisher", sa.String),
    sa.Index("ix_speech_scope", "scope", "published_at", "id"),
    sa.Index("ix_speech_answer", "answer_id", "seq"),
    sa.Index("ix_speech_scope_answer", "scope", "answer_id", "id"),  # 0002: scope transcript
    sqlite_autoincrement=True,
)

usage = sa.Table(
    "usage",
    metadata,
    sa.Column("kind", sa.String, primary_key=True),
    sa.Column("key", sa.String, primary_key=True),
    sa.Column("day", sa.String, primary_key=True),
    sa.Column("amount", sa.Double, nullable=False),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Double, nullable=False),
    sa.Column("actor", sa.String, nullable=False),
    sa.Column("action", sa.String, nullable=False),
    sa.Column("detail", sa.JSON, nullable=False),
    sqlite_autoincrement=True,
)

# Messages between replicas on SQLite (PostgreSQL uses LISTEN/NOTIFY instead).
messages = sa.Table(
    "messages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("channel", sa.String, nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Index("ix_messages_channel", "channel", "id"),
    # listeners remember the last id they read: ids must only grow, even after a purge
    sqlite_autoincrement=True,
)
