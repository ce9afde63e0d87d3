"""problems and incidents

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import fleetup.core.db


revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("subject_ref", sa.String(length=64), nullable=False),
        sa.Column("site", sa.String(length=80), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=True),
        sa.Column("detected_at", fleetup.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", fleetup.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=200), nullable=False),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        sa.Column("next_escalation_at", fleetup.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("root_cause", sa.Text(), nullable=False),
        sa.Column("closed_at", fleetup.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["sop_instances.id"],
            name=op.f("fk_incidents_instance_id_sop_instances"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
    )
    op.create_index(op.f("ix_incidents_detected_at"), "incidents", ["detected_at"], unique=False)
    op.create_index(
        op.f("ix_incidents_next_escalation_at"), "incidents", ["next_escalation_at"], unique=False
    )
    op.create_index(op.f("ix_incidents_site"), "incidents", ["site"], unique=False)
    op.create_index(op.f("ix_incidents_state"), "incidents", ["state"], unique=False)
    op.create_index(op.f("ix_incidents_subject_ref"), "incidents", ["subject_ref"], unique=False)
    op.create_table(
        "alert_silences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("subject_ref", sa.String(length=64), nullable=False),
        sa.Column("until", fleetup.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", fleetup.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_silences")),
    )
    op.create_index(op.f("ix_alert_silences_until"), "alert_silences", ["until"], unique=False)
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("subject_ref", sa.String(length=64), nullable=False),
        sa.Column("site", sa.String(length=80), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("muted_by", sa.String(length=32), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("first_seen", fleetup.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen", fleetup.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", fleetup.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_alerts_incident_id_incidents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    op.create_index(op.f("ix_alerts_rule"), "alerts", ["rule"], unique=False)
    op.create_index(op.f("ix_alerts_status"), "alerts", ["status"], unique=False)
    op.create_index(op.f("ix_alerts_subject_ref"), "alerts", ["subject_ref"], unique=False)
    op.create_table(
        "problems",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("machine_id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("upgrade_instance_id", sa.Integer(), nullable=True),
        sa.Column("upgrade_node", sa.String(length=64), nullable=False),
        sa.Column("opened_by", sa.String(length=200), nullable=False),
        sa.Column("opened_at", fleetup.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", fleetup.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["sop_instances.id"],
            name=op.f("fk_problems_instance_id_sop_instances"),
        ),
        sa.ForeignKeyConstraint(
            ["machine_id"], ["machines.id"], name=op.f("fk_problems_machine_id_machines")
        ),
        sa.ForeignKeyConstraint(
            ["upgrade_instance_id"],
            ["sop_instances.id"],
            name=op.f("fk_problems_upgrade_instance_id_sop_instances"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_problems")),
    )
    op.create_index(op.f("ix_problems_instance_id"), "problems", ["instance_id"], unique=False)
    op.create_index(op.f("ix_problems_machine_id"), "problems", ["machine_id"], unique=False)
    op.create_index(op.f("ix_problems_serial"), "problems", ["serial"], unique=False)
    op.create_index(op.f("ix_problems_status"), "problems", ["status"], unique=False)
    op.create_table(
        "problem_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("problem_id", sa.Integer(), nullable=False),
        sa.Column("node", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("action_id", sa.String(length=32), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("at", fleetup.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["problem_id"],
            ["problems.id"],
            name=op.f("fk_problem_steps_problem_id_problems"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_problem_steps")),
    )
    op.create_index(
        op.f("ix_problem_steps_problem_id"), "problem_steps", ["problem_id"], unique=False
    )
    op.create_table(
        "incident_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("at", fleetup.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_incident_entries_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_entries")),
    )
    op.create_index(
        op.f("ix_incident_entries_incident_id"), "incident_entries", ["incident_id"], unique=False
    )
    op.create_table(
        "incident_tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.Column("created_at", fleetup.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_incident_tasks_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_tasks")),
    )
    op.create_index(
        op.f("ix_incident_tasks_incident_id"), "incident_tasks", ["incident_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_incident_tasks_incident_id"), table_name="incident_tasks")
    op.drop_table("incident_tasks")
    op.drop_index(op.f("ix_incident_entries_incident_id"), table_name="incident_entries")
    op.drop_table("incident_entries")
    op.drop_index(op.f("ix_problem_steps_problem_id"), table_name="problem_steps")
    op.drop_table("problem_steps")
    op.drop_index(op.f("ix_problems_instance_id"), table_name="problems")
    op.drop_index(op.f("ix_problems_machine_id"), table_name="problems")
    op.drop_index(op.f("ix_problems_serial"), table_name="problems")
    op.drop_index(op.f("ix_problems_status"), table_name="problems")
    op.drop_table("problems")
    op.drop_index(op.f("ix_alerts_rule"), table_name="alerts")
    op.drop_index(op.f("ix_alerts_status"), table_name="alerts")
    op.drop_index(op.f("ix_alerts_subject_ref"), table_name="alerts")
    op.drop_table("alerts")
    op.drop_index(op.f("ix_alert_silences_until"), table_name="alert_silences")
    op.drop_table("alert_silences")
    op.drop_index(op.f("ix_incidents_detected_at"), table_name="incidents")
    op.drop_index(op.f("ix_incidents_next_escalation_at"), table_name="incidents")
    op.drop_index(op.f("ix_incidents_site"), table_name="incidents")
    op.drop_index(op.f("ix_incidents_state"), table_name="incidents")
    op.drop_index(op.f("ix_incidents_subject_ref"), table_name="incidents")
    op.drop_table("incidents")
