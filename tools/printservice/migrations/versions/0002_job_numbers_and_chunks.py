"""Jobs get a number in submission order (the order /fetch hands them out, which the old
schema kept only in SQLite's rowid), their state type as a column (queried without a
JSON function of one engine), and their file in 64 KiB chunks (streamed a row at a time).
Jobs are copied one at a time, so the migration never holds more than one job's file.

Revision ID: 0002
Revises: 0001
"""
import json

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
CHUNK = 64 * 1024


def upgrade():
    conn = op.get_bind()
    op.create_table(
        "jobs_new", sa.Column("num", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.Text, nullable=False, unique=True),
        sa.Column("printer_id", sa.Text, nullable=False), sa.Column("title", sa.Text, nullable=False),
        sa.Column("owner", sa.Text, nullable=False), sa.Column("content_type", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False), sa.Column("ticket", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False), sa.Column("state_type", sa.Text, nullable=False),
        sa.Column("create_ms", sa.BigInteger, nullable=False), sa.Column("update_ms", sa.BigInteger, nullable=False),
        sa.Column("delivery_attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("pages_printed", sa.Integer, nullable=False, server_default="0"))
    content = op.create_table(
        "job_content", sa.Column("job_id", sa.Text, primary_key=True), sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False))
    old = sa.table("jobs", *(sa.column(c) for c in (
        "id", "printer_id", "title", "owner", "content_type", "content", "ticket", "state", "create_ms",
        "update_ms", "delivery_attempts", "pages_printed")))
    new = sa.table("jobs_new", *(sa.column(c) for c in (
        "id", "printer_id", "title", "owner", "content_type", "size", "ticket", "state", "state_type",
        "create_ms", "update_ms", "delivery_attempts", "pages_printed")))
    # oldest first; ties in the same millisecond keep the order they were stored in
    order = [old.c.create_ms] + ([sa.literal_column("rowid")] if conn.dialect.name == "sqlite" else [])
    ids = [r[0] for r in conn.execute(sa.select(old.c.id).order_by(*order))]
    fields = [c for c in old.c if c.name != "content"]
    for job_id in ids:
        row = conn.execute(sa.select(*fields).where(old.c.id == job_id)).mappings().one()
        data = conn.execute(sa.select(old.c.content).where(old.c.id == job_id)).scalar() or b""
        conn.execute(new.insert().values(size=len(data), state_type=json.loads(row["state"])["state"]["type"],
                                         **row))
        for seq, off in enumerate(range(0, len(data), CHUNK)):
            conn.execute(content.insert().values(job_id=job_id, seq=seq, data=data[off:off + CHUNK]))
    op.drop_index("jobs_by_printer", "jobs")
    op.drop_table("jobs")
    op.rename_table("jobs_new", "jobs")
    op.create_index("jobs_by_printer", "jobs", ["printer_id", "state_type", "num"])


def downgrade():
    raise NotImplementedError("0002 cannot be undone: restore the backup taken before the upgrade")
