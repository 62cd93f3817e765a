"""Webhooks: an account's URLs, each with its own signing secret and the last event it was
sent (delivery runs in event order, one event at a time per webhook, so a job's events
arrive in order); the events waiting to be sent, written in the same transaction as the
change they tell of; and a log of delivery attempts for the console.

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"


def upgrade():
    op.create_table(
        "webhooks", sa.Column("id", sa.Text, primary_key=True), sa.Column("email", sa.Text, nullable=False),
        sa.Column("url", sa.Text, nullable=False), sa.Column("secret", sa.Text, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False), sa.Column("deleted_ms", sa.BigInteger),
        sa.Column("cursor", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_ms", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("lease_ms", sa.BigInteger, nullable=False, server_default="0"),
        sa.Index("webhooks_by_email", "email"))
    op.create_table(
        "events", sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("email", sa.Text, nullable=False), sa.Column("kind", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False), sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Index("events_by_email", "email", "id"))
    op.create_table(
        "deliveries", sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("webhook_id", sa.Text, nullable=False), sa.Column("event_id", sa.BigInteger, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False), sa.Column("status", sa.Integer),
        sa.Column("error", sa.Text), sa.Column("took_ms", sa.Integer, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Index("deliveries_by_webhook", "webhook_id", "id"))


def downgrade():
    op.drop_table("deliveries")
    op.drop_table("events")
    op.drop_table("webhooks")
