"""indexes for the worker's questions: a device flag for a health report that names something,
devices by last_seen, SOP instances by chart, status and machine

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "devices",
        sa.Column("reporting", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.create_index(op.f("ix_devices_reporting"), "devices", ["reporting"], unique=False)
    op.create_index(op.f("ix_devices_last_seen"), "devices", ["last_seen"], unique=False)
    op.create_index(
        "ix_sop_instances_chart_id_status_machine_id",
        "sop_instances",
        ["chart_id", "status", "machine_id"],
        unique=False,
    )
    op.create_index(
        "ix_sop_instances_machine_id_chart_id",
        "sop_instances",
        ["machine_id", "chart_id"],
        unique=False,
    )
    # Reports kept before the flag existed: the text match the watch used to make, a superset
    # that the monitoring pass narrows; the next heartbeat sets the flag exactly.
    devices = sa.table("devices", sa.column("health", sa.JSON()), sa.column("reporting"))
    text = sa.cast(devices.c.health, sa.Text)
    op.execute(
        devices.update().values(
            reporting=sa.or_(text.contains('"anomalies"'), text.contains('"problem"'))
        )
    )


def downgrade() -> None:
    op.drop_index("ix_sop_instances_machine_id_chart_id", table_name="sop_instances")
    op.drop_index("ix_sop_instances_chart_id_status_machine_id", table_name="sop_instances")
    op.drop_index(op.f("ix_devices_last_seen"), table_name="devices")
    op.drop_index(op.f("ix_devices_reporting"), table_name="devices")
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("reporting")
