"""file checkpoints, saved CLI state of checkpointed sessions, pending conversation cuts

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _session_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["session_id"], ["sessions.id"], name=op.f(f"fk_{table}_session_id_sessions"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "checkpoints",
        sa.Column("session_id", sa.String(length=36), nullable=False),
        sa.Column("user_message_uuid", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("prompt", sa.String(length=500), nullable=False),
        sa.Column("files_changed", sa.JSON(), nullable=False),
        _session_fk("checkpoints"),
        sa.PrimaryKeyConstraint("session_id", "user_message_uuid", name=op.f("pk_checkpoints")),
    )
    op.create_index("ix_checkpoints_session_created", "checkpoints", ["session_id", "created_at"])
    op.create_table(
        "session_files",
        sa.Column("session_id", sa.String(length=36), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _session_fk("session_files"),
        sa.PrimaryKeyConstraint("session_id", "path", name=op.f("pk_session_files")),
    )
    op.create_table(
        "session_cuts",
        sa.Column("session_id", sa.String(length=36), nullable=False),
        sa.Column("checkpoint_id", sa.String(length=64), nullable=False),
        sa.Column("resume_at", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _session_fk("session_cuts"),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_session_cuts")),
    )


def downgrade() -> None:
    op.drop_table("session_cuts")
    op.drop_table("session_files")
    op.drop_index("ix_checkpoints_session_created", table_name="checkpoints")
    op.drop_table("checkpoints")
