"""per-chatflow handling of a turn asked while another of its chat runs

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("chatflows") as batch:
        batch.add_column(
            sa.Column("concurrent_turns", sa.String(16), nullable=False, server_default="reject")
        )


def downgrade() -> None:
    with op.batch_alter_table("chatflows") as batch:
        batch.drop_column("concurrent_turns")
