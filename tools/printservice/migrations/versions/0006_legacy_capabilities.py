"""Older GCP 1.0 printers and connectors describe themselves in PPD or XPS, not CDD: their
capabilities and defaults are kept as given, beside the CDD the service derives for its
own use.

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade():
    with op.batch_alter_table("printers") as batch:
        batch.add_column(sa.Column("legacy_capabilities", sa.Text))
        batch.add_column(sa.Column("legacy_defaults", sa.Text))


def downgrade():
    with op.batch_alter_table("printers") as batch:
        batch.drop_column("legacy_defaults")
        batch.drop_column("legacy_capabilities")
