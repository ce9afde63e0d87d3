"""notices acceptances and surveys

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import fleetup.core.db


revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "site_visits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("machine_id", sa.Integer(), nullable=False),
        sa.Column("technician", sa.String(length=64), nullable=False),
        sa.Column("visit_start", fleetup.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("visit_end", fleetup.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expected_minutes", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("notice_due_at", fleetup.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("notice_sent_at", fleetup.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reminder_due_at", fleetup.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reminder_sent_at", fleetup.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("answer", sa.String(length=16), nullable=False),
        sa.Column("answer_note", sa.Text(), nullable=False),
        sa.Column("answered_at", fleetup.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", fleetup.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["machine_id"], ["machines.id"], name=op.f("fk_site_visits_machine_id_machines")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_site_visits")),
    )
    op.create_index(op.f("ix_site_visits_machine_id"), "site_visits", ["machine_id"], unique=False)
    op.create_index(
        op.f("ix_site_visits_notice_due_at"), "site_visits", ["notice_due_at"], unique=False
    )
    op.create_index(
        op.f("ix_site_visits_reminder_due_at"), "site_visits", ["reminder_due_at"], unique=False
    )
    op.create_index(op.f("ix_site_visits_status"), "site_visits", ["status"], unique=False)
    op.create_index(op.f("ix_site_visits_technician"), "site_visits", ["technician"], unique=False)
    op.create_index(
        op.f("ix_site_visits_visit_start"), "site_visits", ["visit_start"], unique=False
    )
    op.create_table(
        "acceptances",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("machine_id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("signer_name", sa.String(length=100), nullable=False),
        sa.Column("signed_at", fleetup.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("signed_via", sa.String(length=16), nullable=False),
        sa.Column("machines", sa.JSON(), nullable=False),
        sa.Column("signature_b64", sa.Text(), nullable=False),
        sa.Column("signature_sha256", sa.String(length=64), nullable=False),
        sa.Column("signature_bytes", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["sop_instances.id"],
            name=op.f("fk_acceptances_instance_id_sop_instances"),
        ),
        sa.ForeignKeyConstraint(
            ["machine_id"], ["machines.id"], name=op.f("fk_acceptances_machine_id_machines")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_acceptances")),
        sa.UniqueConstraint("number", name=op.f("uq_acceptances_number")),
    )
    op.create_index(
        op.f("ix_acceptances_instance_id"), "acceptances", ["instance_id"], unique=False
    )
    op.create_index(op.f("ix_acceptances_machine_id"), "acceptances", ["machine_id"], unique=False)
    op.create_table(
        "survey_follow_ups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("machine_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("due_at", fleetup.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("done_at", fleetup.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", fleetup.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["sop_instances.id"],
            name=op.f("fk_survey_follow_ups_instance_id_sop_instances"),
        ),
        sa.ForeignKeyConstraint(
            ["machine_id"], ["machines.id"], name=op.f("fk_survey_follow_ups_machine_id_machines")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_follow_ups")),
    )
    op.create_index(
        op.f("ix_survey_follow_ups_instance_id"), "survey_follow_ups", ["instance_id"], unique=False
    )
    op.create_index(
        op.f("ix_survey_follow_ups_machine_id"), "survey_follow_ups", ["machine_id"], unique=False
    )
    op.create_table(
        "surveys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("machine_id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("opened_at", fleetup.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", fleetup.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("answered_at", fleetup.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"], ["sop_instances.id"], name=op.f("fk_surveys_instance_id_sop_instances")
        ),
        sa.ForeignKeyConstraint(
            ["machine_id"], ["machines.id"], name=op.f("fk_surveys_machine_id_machines")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_surveys")),
        sa.UniqueConstraint("nonce", name=op.f("uq_surveys_nonce")),
    )
    op.create_index(op.f("ix_surveys_instance_id"), "surveys", ["instance_id"], unique=False)
    op.create_index(op.f("ix_surveys_machine_id"), "surveys", ["machine_id"], unique=False)
    op.create_index(op.f("ix_surveys_status"), "surveys", ["status"], unique=False)


def downgrade() -> None:
    op.drop_table("surveys")
    op.drop_table("survey_follow_ups")
    op.drop_table("acceptances")
    op.drop_table("site_visits")
