"""wave members indexed by wave and status, so a wave's counts read the index alone

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 23:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_campaign_wave_members_wave_id_status",
        "campaign_wave_members",
        ["wave_id", "status"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_campaign_wave_members_wave_id_status", table_name="campaign_wave_members")
