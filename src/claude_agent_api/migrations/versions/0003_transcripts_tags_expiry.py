"""transcripts, tags, expiry

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "transcript_entries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("session_id", sa.String(length=36), nullable=False),
        sa.Column("subpath", sa.String(length=255), nullable=False),
        sa.Column("project_key", sa.String(length=1024), nullable=False),
        sa.Column("uuid", sa.String(length=64), nullable=True),
        sa.Column("entry_type", sa.String(length=64), nullable=True),
        sa.Column("entry", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transcript_entries")),
    )
    with op.batch_alter_table("transcript_entries", schema=None) as batch_op:
        batch_op.create_index("ix_transcript_entries_session", ["session_id", "subpath", "id"], unique=False)
        batch_op.create_index(
            "uq_transcript_entries_uuid",
            ["session_id", "subpath", "uuid"],
            unique=True,
            sqlite_where=sa.text("uuid IS NOT NULL"),
            postgresql_where=sa.text("uuid IS NOT NULL"),
        )

    op.create_table(
        "session_tags",
        sa.Column("session_id", sa.String(length=36), nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_session_tags_session_id_sessions"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("session_id", "tag", name=op.f("pk_session_tags")),
    )
    with op.batch_alter_table("session_tags", schema=None) as batch_op:
        batch_op.create_index("ix_session_tags_tag", ["tag", "session_id"], unique=False)

    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expired_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_column("expired_at")

    with op.batch_alter_table("session_tags", schema=None) as batch_op:
        batch_op.drop_index("ix_session_tags_tag")

    op.drop_table("session_tags")
    with op.batch_alter_table("transcript_entries", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_transcript_entries_uuid",
            sqlite_where=sa.text("uuid IS NOT NULL"),
            postgresql_where=sa.text("uuid IS NOT NULL"),
        )
        batch_op.drop_index("ix_transcript_entries_session")

    op.drop_table("transcript_entries")
