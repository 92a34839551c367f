"""Index for a live scope's transcript (`scope_answers`): its answers by last sentence queued.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_speech_scope_answer", "speech_items", ["scope", "answer_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_speech_scope_answer", table_name="speech_items")
