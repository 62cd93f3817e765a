"""API keys move out of the users table: several per account, named, revocable, and kept
only as their SHA-256 (a key is 256 random bits, so a fast hash is enough; the plain key
is shown once when it is made). Each existing key becomes its account's "bootstrap" key,
so DATA/owner.key keeps working.

Revision ID: 0003
Revises: 0002
"""
import hashlib
import secrets

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade():
    conn = op.get_bind()
    keys = op.create_table(
        "api_keys", sa.Column("id", sa.Text, primary_key=True),
        sa.Column("email", sa.Text, nullable=False), sa.Column("name", sa.Text, nullable=False),
        sa.Column("key_hash", sa.Text, nullable=False, unique=True),
        sa.Column("created_ms", sa.BigInteger, nullable=False), sa.Column("revoked_ms", sa.BigInteger))
    users = sa.table("users", sa.column("email"), sa.column("api_key"))
    for email, key in conn.execute(sa.select(users.c.email, users.c.api_key)).all():
        conn.execute(keys.insert().values(id="k" + secrets.token_hex(6), email=email, name="bootstrap",
                                          key_hash=hashlib.sha256(key.encode()).hexdigest(), created_ms=0))
    with op.batch_alter_table("users") as batch:
        batch.drop_column("api_key")
        batch.add_column(sa.Column("created_ms", sa.BigInteger, nullable=False, server_default="0"))


def downgrade():
    raise NotImplementedError("0003 cannot be undone: the plain keys are gone; restore a backup")
