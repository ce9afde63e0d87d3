"""remote device actions

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-21 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("device_actions", schema=None) as batch_op:
        batch_op.alter_column("instance_id", existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column("release_id", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(
            sa.Column("params", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )
        batch_op.add_column(
            sa.Column("evidence", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )


def downgrade() -> None:
    # Rows without a release or instance cannot survive the stricter columns.
    op.execute(
        "DELETE FROM device_events WHERE action_id IN (SELECT id FROM device_actions"
        " WHERE release_id IS NULL OR instance_id IS NULL)"
    )
    op.execute(
        "DELETE FROM backup_uploads WHERE action_id IN (SELECT id FROM device_actions"
        " WHERE release_id IS NULL OR instance_id IS NULL)"
    )
    op.execute("DELETE FROM device_actions WHERE release_id IS NULL OR instance_id IS NULL")
    with op.batch_alter_table("device_actions", schema=None) as batch_op:
        batch_op.drop_column("evidence")
        batch_op.drop_column("params")
        batch_op.alter_column("release_id", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("instance_id", existing_type=sa.Integer(), nullable=False)
