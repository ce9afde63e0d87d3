"""site visits indexed by status and due time, so asking whether a notice or a reminder is
due reads the due ones, not every planned or notified visit; campaign visits by technician and
start, so a technician's plan reads their own visits, not the whole campaign's

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 06:45:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_site_visits_notice_due", "site_visits", ["status", "notice_due_at"], unique=False
    )
    op.create_index(
        "ix_site_visits_reminder_due",
        "site_visits",
        ["status", "reminder_sent_at", "reminder_due_at"],
        unique=False,
    )
    op.create_index(
        "ix_campaign_visits_technician_plan",
        "campaign_visits",
        ["campaign_id", "technician", "planned_start"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_campaign_visits_technician_plan", table_name="campaign_visits")
    op.drop_index("ix_site_visits_reminder_due", table_name="site_visits")
    op.drop_index("ix_site_visits_notice_due", table_name="site_visits")
