"""One table from PostgreSQL errors to storage errors (what a refused statement means to the client)."""

from __future__ import annotations

import asyncpg
import structlog

from madbase.core.errors import GatewayError, Kind
from madbase.storage import errors
from madbase.storage.errors import StorageError

log = structlog.get_logger("madbase.storage")

_UNAVAILABLE = (OSError, TimeoutError, asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError,
                asyncpg.ConnectionDoesNotExistError, asyncpg.InterfaceError)


def map_db_error(exc: BaseException, *, on_unique: StorageError | None = None,
                 on_foreign_key: StorageError | None = None) -> BaseException:
    """The error to raise instead of `exc` (a StorageError or GatewayError); unknown ones become internal."""
    if isinstance(exc, StorageError | GatewayError):
        return exc
    if isinstance(exc, asyncpg.InsufficientPrivilegeError):
        return errors.access_denied(str(exc.args[0]) if exc.args else "permission denied")
    if isinstance(exc, asyncpg.UniqueViolationError):
        return on_unique or errors.duplicate()
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        return on_foreign_key or errors.no_such_bucket()
    if isinstance(exc, asyncpg.DataError | asyncpg.CheckViolationError | asyncpg.NotNullViolationError):
        return errors.invalid_request("Invalid input")
    if isinstance(exc, asyncpg.QueryCanceledError):
        return StorageError("DatabaseTimeout", 544, "DatabaseTimeout", "The database timed out", http=500)
    if isinstance(exc, _UNAVAILABLE):
        return GatewayError(Kind.DB_UNAVAILABLE, "Database is not available", cause=exc)
    log.error("storage_db_error", error=repr(exc))
    return errors.internal()
