"""The bot's state: claims, answers, feedback, bindings, video jobs, live sessions and links,
speech queue, usage, audit log, replica messages.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UNFINISHED = sa.text("state NOT IN ('delivered', 'failed')")


def upgrade() -> None:
    op.create_table(
        "claims",
        sa.Column("namespace", sa.String, primary_key=True),
        sa.Column("key", sa.String, primary_key=True),
        sa.Column("expires_at", sa.Double, nullable=False),
    )
    op.create_table(
        "answers",
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
    )
    op.create_index("ix_answers_thread", "answers", ["channel", "thread_ts", "created_at"])
    op.create_index("ix_answers_created", "answers", ["created_at"])
    op.create_table(
        "feedback",
        sa.Column("answer_id", sa.String, primary_key=True),
        sa.Column("user", sa.String, primary_key=True),
        sa.Column("value", sa.String, nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("created_at", sa.Double, nullable=False),
    )
    op.create_table(
        "bindings",
        sa.Column("channel", sa.String, primary_key=True),
        sa.Column("datasource", sa.String, primary_key=True),
        sa.Column("created_by", sa.String, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
    )
    op.create_table(
        "video_jobs",
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
    )
    op.create_index(
        "ux_video_jobs_unfinished_dedupe",
        "video_jobs",
        ["dedupe_key"],
        unique=True,
        sqlite_where=UNFINISHED,
        postgresql_where=UNFINISHED,
    )
    op.create_index("ix_video_jobs_heygen", "video_jobs", ["heygen_video_id"])
    op.create_index("ix_video_jobs_state", "video_jobs", ["state", "created_at"])
    op.create_table(
        "live_sessions",
        sa.Column("scope", sa.String, primary_key=True),
        sa.Column("backend", sa.String, nullable=False),
        sa.Column("session_id", sa.String),
        sa.Column("session_sealed", sa.Text),
        sa.Column("state", sa.String, nullable=False),
        sa.Column("owner", sa.String),
        sa.Column("lease_until", sa.Double, nullable=False),
        sa.Column("started_at", sa.Double, nullable=False),
        sa.Column("last_activity_at", sa.Double, nullable=False),
        sa.Column("viewer_seen_at", sa.Double, nullable=False),
    )
    op.create_table(
        "live_links",
        sa.Column("token", sa.String, primary_key=True),
        sa.Column("scope", sa.String, nullable=False),
        sa.Column("current_for", sa.String, unique=True),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("expires_at", sa.Double, nullable=False),
    )
    op.create_table(
        "speech_items",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("scope", sa.String, nullable=False),
        sa.Column("answer_id", sa.String, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("published_at", sa.Double),
        sa.Column("publisher", sa.String),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_speech_scope", "speech_items", ["scope", "published_at", "id"])
    op.create_index("ix_speech_answer", "speech_items", ["answer_id", "seq"])
    op.create_table(
        "usage",
        sa.Column("kind", sa.String, primary_key=True),
        sa.Column("key", sa.String, primary_key=True),
        sa.Column("day", sa.String, primary_key=True),
        sa.Column("amount", sa.Double, nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Double, nullable=False),
        sa.Column("actor", sa.String, nullable=False),
        sa.Column("action", sa.String, nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("channel", sa.String, nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_messages_channel", "messages", ["channel", "id"])


def downgrade() -> None:
    for table in (
        "messages",
        "audit_log",
        "usage",
        "speech_items",
        "live_links",
        "live_sessions",
        "video_jobs",
        "bindings",
        "feedback",
        "answers",
        "claims",
    ):
        op.drop_table(table)
