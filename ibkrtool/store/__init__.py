"""Storage: SQLAlchemy Core tables on SQLite (embedded default) or PostgreSQL (schema ``ibkr_data``).

Library code only: functions take an Engine (or a Connection when the caller owns the transaction), return values
and raise ``StoreError`` / ``InputError``; nothing here prints.
"""
