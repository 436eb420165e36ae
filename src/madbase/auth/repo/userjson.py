"""`GET /user` as one statement: GoTrue's User JSON built by PostgreSQL, in one round trip.

The statement runs through the kit's `TxRunner.statement` (core/db.py `run_request_statement`: role,
settings and the statement in one implicit read-only transaction, the statement prepared per connection), so
the request costs one round trip instead of BEGIN, set_config, the query and COMMIT. The JSON has the same
fields, values and order as `users.user_json` of a `repo.users.load` row (omitempty fields left out,
timestamps as Python's `isoformat` with `Z`). Database errors are mapped by auth's one table (errors.DB_ERRORS).
"""

from __future__ import annotations

import asyncpg

from madbase.auth.errors import DB_ERRORS
from madbase.core.kit import TxRunner, TxSettings

_RUNNER = TxRunner(DB_ERRORS)
# Bitmap scans off for this statement only (transaction-local, like every setting here): its three lookups by
# user id fetch a row or two each, and a generic plan's bitmap heap scans (a TID bitmap built per lookup) made
# the statement 4 times slower than index scans (EXPLAIN ANALYZE 0.38 ms → 0.09 ms; docs/performance.md).
_SETTINGS = TxSettings.internal("supabase_auth_admin").with_settings(("enable_bitmapscan", "off"))


def _ts(col: str) -> str:
    """A timestamptz as a JSON string the way `users.ts` writes it (UTC, `Z`, microseconds only when non-zero);
    null stays null. The fraction '.000000' can only be the fraction: the rest has no dot."""
    return f"""'"' || replace(to_char({col} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), '.000000', '') || 'Z"'"""


def _str(expr: str) -> str:
    return f"to_json({expr})::text"


# (key, JSON text of the value or null to leave the key out), in users.user_json's order.
_FIELDS: tuple[tuple[str, str], ...] = (
    ("id", """'"' || u.id || '"'"""),
    ("aud", _str("coalesce(u.aud, '')")),
    ("role", _str("coalesce(u.role, '')")),
    ("email", _str("coalesce(u.email, '')")),
    ("email_confirmed_at", _ts("u.email_confirmed_at")),
    ("invited_at", _ts("u.invited_at")),
    ("phone", _str("coalesce(u.phone, '')")),
    ("phone_confirmed_at", _ts("u.phone_confirmed_at")),
    ("confirmation_sent_at", _ts("u.confirmation_sent_at")),
    ("confirmed_at", _ts("u.confirmed_at")),
    ("recovery_sent_at", _ts("u.recovery_sent_at")),
    ("new_email", _str("nullif(u.email_change, '')")),
    ("email_change_sent_at", _ts("u.email_change_sent_at")),
    ("new_phone", _str("nullif(u.phone_change, '')")),
    ("phone_change_sent_at", _ts("u.phone_change_sent_at")),
    ("reauthentication_sent_at", _ts("u.reauthentication_sent_at")),
    ("last_sign_in_at", _ts("u.last_sign_in_at")),
    ("app_metadata", "coalesce(u.raw_app_meta_data, '{}'::jsonb)::text"),
    ("user_metadata", "coalesce(u.raw_user_meta_data, '{}'::jsonb)::text"),
    ("identities", """coalesce((select json_agg(json_build_object(
      'identity_id', i.id, 'id', i.provider_id, 'user_id', i.user_id, 'identity_data', i.identity_data,
      'provider', i.provider, 'last_sign_in_at', i.last_sign_in_at, 'created_at', i.created_at,
      'updated_at', i.updated_at, 'email', i.email) order by i.created_at)
    from auth.identities i where i.user_id = u.id), '[]')::text"""),
    ("factors", """(select json_agg(json_build_object(
      'id', f.id, 'friendly_name', coalesce(f.friendly_name, ''), 'factor_type', f.factor_type,
      'status', f.status, 'created_at', f.created_at, 'updated_at', f.updated_at,
      'last_challenged_at', f.last_challenged_at, 'phone', coalesce(f.phone, '')) order by f.created_at)
    from auth.mfa_factors f where f.user_id = u.id)::text"""),
    ("created_at", _ts("u.created_at")),
    ("updated_at", _ts("u.updated_at")),
    ("banned_until", _ts("u.banned_until")),
    ("deleted_at", _ts("u.deleted_at")),
    ("is_anonymous", "case when u.is_anonymous then 'true' else 'false' end"),
)

# The object's text: concat_ws leaves out the null members (GoTrue's omitempty); no JSON is parsed again.
_USER_OBJECT = "'{' || concat_ws(',',\n  " + ",\n  ".join(f"""'"{key}":' || {value}""" for key, value in _FIELDS) \
    + ") || '}'"

# $1[1]: the user id; $1[2]: the session id the token names (null when none or not a UUID).
GET_USER_SQL = f"""
select exists(select 1 from auth.sessions s where s.id = $1[2]::uuid and s.user_id = u.id) as session_ok,
  {_USER_OBJECT} as body
from auth.users u where u.id = $1[1]::uuid
"""
GET_USER_COLUMNS = "session_ok bool, body text"


async def get_user_json(pool: asyncpg.Pool, user_id: str, session_id: str | None) -> tuple[bool, bytes] | None:
    """(whether session `session_id` of the user exists, the User JSON as UTF-8) or None for no such user.
    The ids are canonical UUID texts (`users.uuid_text`): PostgreSQL casts them."""
    row = await _RUNNER.statement(pool, _SETTINGS, GET_USER_SQL, [user_id, session_id], GET_USER_COLUMNS,
                                  readonly=True)
    if row is None:
        return None
    body: str = row["body"]
    return bool(row["session_ok"]), body.encode()
