"""per-chatflow allowed origins (CORS) and rate limit

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("chatflows") as batch:
        batch.add_column(
            sa.Column("allowed_origins", sa.Text(), nullable=False, server_default="[]")
        )
        batch.add_column(sa.Column("rate_limit", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("chatflows") as batch:
        batch.drop_column("rate_limit")
        batch.drop_column("allowed_origins")
