"""Alembic's entry point for the service's migrations. The service runs them itself at
start (store.migrate), on the connection it hands over in config.attributes."""
from alembic import context

connection = context.config.attributes["connection"]
# batch mode: SQLite alters a table by copying it, which Alembic does for us
context.configure(connection=connection, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
