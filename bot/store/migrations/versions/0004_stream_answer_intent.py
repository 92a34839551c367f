"""An answer's intent and its stream: the question's message, the streamed message's ts, and
whether the saved text is final (`pending` until the answer is complete), so a restart
finishes a stream a crash cut off instead of posting a second message (bot.slack.posting).

Revision ID: 0004_stream
Revises: 0003_crawl
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_stream"
down_revision = "0003_crawl"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("answers") as batch:
        batch.add_column(sa.Column("question_ts", sa.String))
        batch.add_column(sa.Column("stream_ts", sa.String))
        batch.add_column(
            sa.Column("pending", sa.Boolean, nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("answers") as batch:
        batch.drop_column("pending")
        batch.drop_column("stream_ts")
        batch.drop_column("question_ts")
