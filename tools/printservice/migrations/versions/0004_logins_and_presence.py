"""Web logins and printer presence: a password (argon2) per account, login sessions (kept
as the SHA-256 of the cookie, with their CSRF token), invitations (the SHA-256 of the link's
token), and each printer's push presence (its retained status and last will on the broker).

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade():
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("password_hash", sa.Text))
    with op.batch_alter_table("printers") as batch:
        batch.add_column(sa.Column("presence", sa.Text))
        batch.add_column(sa.Column("presence_ms", sa.BigInteger))
    op.create_table(
        "sessions", sa.Column("id_hash", sa.Text, primary_key=True),
        sa.Column("email", sa.Text, nullable=False), sa.Column("csrf", sa.Text, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("expires_ms", sa.BigInteger, nullable=False))
    op.create_index("sessions_by_email", "sessions", ["email"])
    op.create_table(
        "invitations", sa.Column("token_hash", sa.Text, primary_key=True),
        sa.Column("email", sa.Text, nullable=False), sa.Column("invited_by", sa.Text, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("expires_ms", sa.BigInteger, nullable=False), sa.Column("used_ms", sa.BigInteger))


def downgrade():
    op.drop_table("invitations")
    op.drop_index("sessions_by_email", "sessions")
    op.drop_table("sessions")
    with op.batch_alter_table("printers") as batch:
        batch.drop_column("presence_ms")
        batch.drop_column("presence")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("password_hash")
