"""Whole-number ids and a job's history, for the PrintNode-compatible API: accounts and
printers get numbers (PrintNode names everything by a positive integer; jobs have theirs
in `num` already), handed out by a counter row; every change of a job is kept as an event
(its PrintNode state history); a job keeps its qty, its source, the content type it was
submitted as (raw_base64, pdf_uri, application/pdf, ...), and for a raw_uri job the
URI the service fetches while the printer downloads (with any credentials it needs).
Existing rows are numbered in creation order and each job gets the events its state implies.

Revision ID: 0007
Revises: 0006
"""
import json

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
CAUSES = ("user_action_cause", "device_state_cause", "device_action_cause", "service_action_cause")


def _cause(state):
    for key in CAUSES:
        if isinstance(state.get(key), dict):
            return state[key].get("action_code") or state[key].get("error_code")
    return None


def upgrade():
    bind = op.get_bind()
    op.create_table("counters", sa.Column("name", sa.Text, primary_key=True),
                    sa.Column("value", sa.BigInteger, nullable=False))
    for table, order in (("users", "created_ms, email"), ("printers", "created_ms, id")):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("num", sa.BigInteger))
        key = "email" if table == "users" else "id"
        rows = bind.exec_driver_sql("SELECT %s FROM %s ORDER BY %s" % (key, table, order)).fetchall()
        t = sa.table(table, sa.column(key), sa.column("num"))
        for n, (k,) in enumerate(rows, 1):
            bind.execute(t.update().where(t.c[key] == k).values(num=n))
        with op.batch_alter_table(table) as batch:
            batch.create_unique_constraint("%s_num" % table, ["num"])
        bind.execute(sa.text("INSERT INTO counters (name, value) VALUES (:n, :v)"), {"n": table, "v": len(rows)})
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("qty", sa.Integer, nullable=False, server_default="1"))
        batch.add_column(sa.Column("source", sa.Text))
        batch.add_column(sa.Column("submitted_as", sa.Text))
        batch.add_column(sa.Column("source_uri", sa.Text))
        batch.add_column(sa.Column("source_auth", sa.Text))
    events = op.create_table(
        "job_events", sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.Text, nullable=False), sa.Column("what", sa.Text, nullable=False),
        sa.Column("cause", sa.Text), sa.Column("pages", sa.Integer), sa.Column("created_ms", sa.BigInteger, nullable=False))
    op.create_index("job_events_by_job", "job_events", ["job_id", "id"])
    rows = bind.exec_driver_sql("SELECT id, state, pages_printed, create_ms, update_ms, delivery_attempts "
                                "FROM jobs ORDER BY num").fetchall()
    for job_id, state, pages, created, updated, deliveries in rows:
        history = [dict(job_id=job_id, what="QUEUED", cause=None, pages=None, created_ms=created)]
        if deliveries:
            history.append(dict(job_id=job_id, what="SENT", cause=None, pages=None, created_ms=updated))
        s = json.loads(state)["state"]
        if s["type"] != "QUEUED":
            history.append(dict(job_id=job_id, what=s["type"], cause=_cause(s), pages=pages, created_ms=updated))
        op.bulk_insert(events, history)


def downgrade():
    op.drop_index("job_events_by_job", "job_events")
    op.drop_table("job_events")
    with op.batch_alter_table("jobs") as batch:
        for column in ("source_auth", "source_uri", "submitted_as", "source", "qty"):
            batch.drop_column(column)
    for table in ("printers", "users"):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint("%s_num" % table, type_="unique")
            batch.drop_column("num")
    op.drop_table("counters")
