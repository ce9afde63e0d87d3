"""outbox and notifications

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import fleetup.core.db


revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("template", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("recipient", sa.String(length=200), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("channel_label", sa.String(length=200), nullable=False),
        sa.Column("channel_url", sa.Text(), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", fleetup.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", fleetup.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_attempt_at", fleetup.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("delivered_at", fleetup.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("key", "recipient", "channel", name="uq_notifications_key_recipient"),
    )
    op.create_index(
        "ix_notifications_due", "notifications", ["status", "next_attempt_at"], unique=False
    )
    op.create_index(
        op.f("ix_notifications_recipient"), "notifications", ["recipient"], unique=False
    )
    op.create_index(op.f("ix_notifications_template"), "notifications", ["template"], unique=False)
    op.create_table(
        "notify_subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("url_digest", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("created_at", fleetup.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_notify_subscriptions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_subscriptions")),
        sa.UniqueConstraint("user_id", "url_digest", name="uq_notify_subscriptions_url"),
    )
    op.create_index(
        op.f("ix_notify_subscriptions_user_id"), "notify_subscriptions", ["user_id"], unique=False
    )
    op.create_table(
        "device_wakeups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("queued_at", fleetup.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_device_wakeups_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_wakeups")),
    )
    op.create_index(
        op.f("ix_device_wakeups_device_id"), "device_wakeups", ["device_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_device_wakeups_device_id"), table_name="device_wakeups")
    op.drop_table("device_wakeups")
    op.drop_index(op.f("ix_notify_subscriptions_user_id"), table_name="notify_subscriptions")
    op.drop_table("notify_subscriptions")
    op.drop_index(op.f("ix_notifications_template"), table_name="notifications")
    op.drop_index(op.f("ix_notifications_recipient"), table_name="notifications")
    op.drop_index("ix_notifications_due", table_name="notifications")
    op.drop_table("notifications")
