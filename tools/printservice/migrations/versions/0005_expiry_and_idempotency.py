"""Job expiry and idempotent submits: each job has the moment after which no printer is
handed it, and an account's idempotency keys name the job their first submit made. Jobs
already in the database were submitted with no expiry promised: they get the default 14
days from the upgrade, so an upgrade drops none of them at once.

Revision ID: 0005
Revises: 0004
"""
import time

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
DEFAULT_EXPIRY_MS = 14 * 24 * 3600 * 1000


def upgrade():
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("expires_ms", sa.BigInteger))
    jobs = sa.table("jobs", sa.column("expires_ms"))
    op.get_bind().execute(jobs.update().values(expires_ms=int(time.time() * 1000) + DEFAULT_EXPIRY_MS))
    op.create_table(
        "idempotency_keys", sa.Column("email", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True), sa.Column("job_id", sa.Text, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False))


def downgrade():
    op.drop_table("idempotency_keys")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("expires_ms")
