"""Alembic environment: run programmatically by assistant.store.db.upgrade with the engine attached."""

from __future__ import annotations

from alembic import context

from assistant.store.models import Base

engine = context.config.attributes.get("engine")
if engine is None or context.is_offline_mode():
    raise RuntimeError("migrations run through assistant.store.db.upgrade(engine), not the alembic CLI")

with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
