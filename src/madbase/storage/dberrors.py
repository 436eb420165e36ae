"""Storage's one table from database errors to storage errors, and the transaction runner that applies it.

Every storage transaction runs through `RUNNER` (core/kit/txrunner.py), so a refused statement means the same
to the client wherever it happens; connection failures become the gateway's one "database unavailable".
The few calls where a code means something more specific use a table derived here, once:
`BUCKET_EXISTS` (creating a bucket: 23505 is BucketAlreadyExists, not Duplicate) and `BUCKET_NOT_EMPTY`
(deleting a bucket: 23503 is InvalidRequest "not empty", not NoSuchBucket).
"""

from __future__ import annotations

import asyncpg
import structlog

from madbase.core.kit import ErrorTable, TxRunner
from madbase.storage import errors
from madbase.storage.errors import StorageError

log = structlog.get_logger("madbase.storage")


def _access_denied(exc: asyncpg.PostgresError) -> StorageError:
    return errors.access_denied(str(exc.args[0]) if exc.args else "permission denied")


def _invalid(exc: asyncpg.PostgresError) -> StorageError:
    return errors.invalid_request("Invalid input")


def _timeout(exc: asyncpg.PostgresError) -> StorageError:
    return StorageError("DatabaseTimeout", 544, "DatabaseTimeout", "The database timed out", http=500)


def _internal(exc: asyncpg.PostgresError) -> StorageError:
    log.error("storage_db_error", error=repr(exc))
    return errors.internal()


STORAGE_ERRORS = ErrorTable("storage", {
    "42501": _access_denied,                       # insufficient privilege (RLS refused the row, no grant)
    "23505": lambda exc: errors.duplicate(),       # unique violation: the object exists
    "23503": lambda exc: errors.no_such_bucket(),  # foreign key: the bucket does not exist
    "22": _invalid,                                # data exceptions (bad input of a type)
    "23514": _invalid,                             # check violation
    "23502": _invalid,                             # not null violation
    "57014": _timeout,                             # statement timeout (or cancel)
}, fallback=_internal)

BUCKET_EXISTS = STORAGE_ERRORS.override({"23505": lambda exc: errors.bucket_exists()})
BUCKET_NOT_EMPTY = STORAGE_ERRORS.override({"23503": lambda exc: errors.bucket_not_empty()})

RUNNER = TxRunner(STORAGE_ERRORS)
