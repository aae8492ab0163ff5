"""Alembic environment: migrations run inside the connection `Database.migrate` hands in."""

from alembic import context

from tailwinds.store.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through tailwinds (they apply at `tailwinds start`)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
