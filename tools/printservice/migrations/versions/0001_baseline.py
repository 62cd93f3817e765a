"""The schema of the service before migrations (databases from then are stamped at this
revision rather than created by it).

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade():
    op.create_table("users", sa.Column("email", sa.Text, primary_key=True),
                    sa.Column("api_key", sa.Text, nullable=False, unique=True))
    op.create_table(
        "printers", sa.Column("id", sa.Text, primary_key=True), sa.Column("proxy", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        *(sa.Column(c, sa.Text) for c in ("default_display_name", "uuid", "manufacturer", "model", "firmware",
                                          "gcp_version", "setup_url", "support_url", "update_url")),
        sa.Column("capabilities", sa.Text, nullable=False), sa.Column("caps_hash", sa.Text),
        sa.Column("semantic_state", sa.Text, nullable=False), sa.Column("local_settings", sa.Text, nullable=False),
        sa.Column("owner", sa.Text), sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False), sa.Column("accessed_ms", sa.BigInteger, nullable=False),
        sa.Column("deleted", sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "registrations", sa.Column("token", sa.Text, primary_key=True),
        sa.Column("printer_id", sa.Text, nullable=False), sa.Column("expires_ms", sa.BigInteger, nullable=False),
        sa.Column("claimed_by", sa.Text), sa.Column("auth_code", sa.Text), sa.Column("poll_secret", sa.Text),
        sa.Column("code_given", sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "rate", sa.Column("bucket", sa.Text, primary_key=True), sa.Column("ends_ms", sa.BigInteger, primary_key=True),
        sa.Column("hits", sa.Integer, nullable=False))
    op.create_table(
        "tokens", sa.Column("token", sa.Text, primary_key=True), sa.Column("kind", sa.Text, nullable=False),
        sa.Column("printer_id", sa.Text, nullable=False), sa.Column("client_id", sa.Text, nullable=False),
        sa.Column("expires_ms", sa.BigInteger), sa.Column("used", sa.Integer, nullable=False, server_default="0"),
        sa.Column("revoked", sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "jobs", sa.Column("id", sa.Text, primary_key=True), sa.Column("printer_id", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False), sa.Column("owner", sa.Text, nullable=False),
        sa.Column("content_type", sa.Text, nullable=False), sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("ticket", sa.Text, nullable=False), sa.Column("state", sa.Text, nullable=False),
        sa.Column("create_ms", sa.BigInteger, nullable=False), sa.Column("update_ms", sa.BigInteger, nullable=False),
        sa.Column("delivery_attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("pages_printed", sa.Integer, nullable=False, server_default="0"))
    op.create_index("jobs_by_printer", "jobs", ["printer_id", "create_ms"])


def downgrade():
    for table in ("jobs", "tokens", "rate", "registrations", "printers", "users"):
        op.drop_table(table)
