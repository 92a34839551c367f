"""Channels whose Slack threads are a knowledge source (`/knowledge add #channel`).

Revision ID: 0003_crawl
Revises: 0003_home
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_crawl"
down_revision = "0003_home"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "knowledge_channels",
        sa.Column("channel", sa.String, primary_key=True),
        sa.Column("datasource", sa.String, nullable=False),
        sa.Column("private", sa.Boolean, nullable=False),
        sa.Column("added_by", sa.String, nullable=False),
        sa.Column("added_at", sa.Double, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("knowledge_channels")
