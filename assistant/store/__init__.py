"""Saved conversations, accounts and feedback in a SQL database (SQLite by default, PostgreSQL shared).

A layer below web and cli: it never imports them, and the chat layer never imports it. The
`Database` is built once from settings (`open_database`) and handed to `ConversationStore` and
`Accounts`.
"""

from assistant.store.accounts import Accounts, auth_enabled, cannot_start
from assistant.store.conversations import ConversationStore
from assistant.store.db import Database, open_database
from assistant.store.errors import AccountError, AuthError, Forbidden, NotFound, StoreError, Throttled

__all__ = [
    "AccountError",
    "Accounts",
    "AuthError",
    "ConversationStore",
    "Database",
    "Forbidden",
    "NotFound",
    "StoreError",
    "Throttled",
    "auth_enabled",
    "cannot_start",
    "open_database",
]
