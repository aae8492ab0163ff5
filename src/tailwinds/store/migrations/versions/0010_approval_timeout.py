"""how long a tool call of the chatflow waits for a person's approval (issue 24)

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("chatflows") as batch:
        batch.add_column(sa.Column("approval_timeout_s", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("chatflows") as batch:
        batch.drop_column("approval_timeout_s")
