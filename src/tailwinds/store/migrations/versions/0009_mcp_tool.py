"""a chatflow offered as an MCP tool: exposed flag, tool name, description

Revision ID: 0009
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
# 0008 (concurrentTurns) is being added on another branch: the merge sets this to "0008"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("chatflows") as batch:
        batch.add_column(sa.Column("mcp_tool", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("chatflows") as batch:
        batch.drop_column("mcp_tool")
