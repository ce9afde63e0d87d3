"""wave members indexed by action and upgrade, device actions by status and window end, so
the campaign worker reads only the members whose action or upgrade changed

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 04:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_campaign_wave_members_action_id", "campaign_wave_members", ["action_id"], unique=False
    )
    op.create_index(
        "ix_campaign_wave_members_instance_id",
        "campaign_wave_members",
        ["instance_id"],
        unique=False,
    )
    op.create_index(
        "ix_device_actions_status_not_after",
        "device_actions",
        ["status", "not_after"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_device_actions_status_not_after", table_name="device_actions")
    op.drop_index("ix_campaign_wave_members_instance_id", table_name="campaign_wave_members")
    op.drop_index("ix_campaign_wave_members_action_id", table_name="campaign_wave_members")
