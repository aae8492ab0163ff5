"""Flowise's clients: a chatflow's chat widget settings, feedback on answers, their
follow-up prompts

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
# 0010 (approvals) is being added on another branch: the merge chains this after it
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("chatflows") as batch:
        batch.add_column(sa.Column("chatbot_config", sa.Text(), nullable=True))
    with op.batch_alter_table("chat_messages") as batch:
        batch.add_column(sa.Column("follow_up_prompts", sa.Text(), nullable=True))
    op.create_table(
        "message_feedback",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("chatflow_id", sa.String(36), nullable=False),
        sa.Column("chat_id", sa.String(255), nullable=False),
        sa.Column("message_id", sa.String(36), nullable=False, unique=True),
        sa.Column("rating", sa.String(16), nullable=False),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("created_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_date", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_message_feedback_chatflow", "message_feedback", ["chatflow_id", "chat_id"])


def downgrade() -> None:
    op.drop_index("ix_message_feedback_chatflow", "message_feedback")
    op.drop_table("message_feedback")
    with op.batch_alter_table("chat_messages") as batch:
        batch.drop_column("follow_up_prompts")
    with op.batch_alter_table("chatflows") as batch:
        batch.drop_column("chatbot_config")
