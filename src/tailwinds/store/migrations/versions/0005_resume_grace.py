"""per-chatflow resume grace for streams

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("chatflows") as batch:
        batch.add_column(sa.Column("resume_grace_s", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("chatflows") as batch:
        batch.drop_column("resume_grace_s")
