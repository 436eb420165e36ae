"""Changes to a user's row in `auth.users`: metadata, password, addresses, confirmations, token columns, bans,
deletion. Every function takes a connection of a transaction acting as supabase_auth_admin; column names
come from fixed sets in the code, values are bind parameters.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from madbase.auth.repo import identities, onetime
from madbase.auth.repo.users import TOKEN_COLUMNS
from madbase.core import jsonutil
from madbase.core.types import DbConn

_SENT_AT_COLUMNS = frozenset({"confirmation_sent_at", "recovery_sent_at", "email_change_sent_at",
                              "phone_change_sent_at", "reauthentication_sent_at"})
# Columns the admin API sets directly (auth/admin.py update_user), with the SQL cast of their value.
ADMIN_COLUMNS = {"phone": "", "encrypted_password": "", "raw_user_meta_data": "::jsonb",
                 "raw_app_meta_data": "::jsonb", "role": "", "banned_until": ""}


async def set_user_metadata(conn: DbConn, user_id: uuid.UUID, metadata: dict[str, Any]) -> None:
    await conn.execute("update auth.users set raw_user_meta_data = $2::jsonb, updated_at = now() where id = $1",
                       user_id, jsonutil.dumps_str(metadata))


async def set_password(conn: DbConn, user_id: uuid.UUID, password_hash: str) -> None:
    """A new password; an outstanding reauthentication nonce is spent with it."""
    await conn.execute("update auth.users set encrypted_password = $2, reauthentication_token = '', "
                       "updated_at = now() where id = $1", user_id, password_hash)


async def rehash_password(conn: DbConn, user_id: uuid.UUID, new_hash: str, old_hash: str) -> None:
    """Replace a hash by a stronger one of the same password, unless the password changed meanwhile."""
    await conn.execute("update auth.users set encrypted_password = $2 where id = $1 and encrypted_password = $3",
                       user_id, new_hash, old_hash)


async def clear_reauthentication(conn: DbConn, user_id: uuid.UUID) -> None:
    """The user's outstanding reauthentication nonce stops working."""
    await conn.execute("update auth.users set reauthentication_token = '' where id = $1", user_id)
    await onetime.delete_kind(conn, user_id, "reauthentication_token")


async def set_email_change(conn: DbConn, user_id: uuid.UUID, new_email: str) -> None:
    """A pending change of address to `new_email` (confirmed later through the mailed links)."""
    await conn.execute("update auth.users set email_change = $2, email_change_confirm_status = 0 where id = $1",
                       user_id, new_email)


async def apply_email_change(conn: DbConn, user_id: uuid.UUID, new_email: str) -> None:
    """The address becomes `new_email` (confirmed); the email identity follows, an anonymous user becomes
    permanent with a new email identity; pending change tokens are spent."""
    await conn.execute(
        """update auth.users set email = $2, email_change = '', email_change_token_new = '',
             email_change_token_current = '', email_change_confirm_status = 0, email_confirmed_at = now(),
             updated_at = now() where id = $1""", user_id, new_email)
    if not await identities.set_email(conn, user_id, new_email):
        await identities.add_email_identity(conn, user_id, new_email)
        await conn.execute(
            """update auth.users set is_anonymous = false, raw_app_meta_data = coalesce(raw_app_meta_data, '{}'::jsonb)
                 || jsonb_build_object('provider', case when is_anonymous then 'email'
                      else coalesce(raw_app_meta_data->>'provider', 'email') end,
                    'providers', (select coalesce(jsonb_agg(distinct p), '[]'::jsonb) from (
                      select jsonb_array_elements_text(coalesce(raw_app_meta_data->'providers', '[]'::jsonb)) as p
                      union select 'email') s where p <> 'anonymous'))
               where id = $1""", user_id)
    await onetime.delete_kinds(conn, user_id, ("email_change_token_new", "email_change_token_current"))


async def set_phone_confirmed(conn: DbConn, user_id: uuid.UUID, phone: str) -> None:
    await conn.execute("update auth.users set phone = $2, phone_confirmed_at = now(), updated_at = now() "
                       "where id = $1", user_id, phone)


async def set_phone_change(conn: DbConn, user_id: uuid.UUID, phone: str) -> None:
    await conn.execute("update auth.users set phone_change = $2 where id = $1", user_id, phone)


async def store_token(conn: DbConn, user_id: uuid.UUID, column: str, sent_at: str, token_hash: str) -> None:
    """A mailed/texted token's hash in its column of the user row, with the time it was sent."""
    assert column in TOKEN_COLUMNS and sent_at in _SENT_AT_COLUMNS
    await conn.execute(
        f'update auth.users set "{column}" = $2, "{sent_at}" = now(), updated_at = now() where id = $1',
        user_id, token_hash)


async def confirm_phone(conn: DbConn, user_id: uuid.UUID) -> None:
    """An SMS sign-up code was verified."""
    await conn.execute("""update auth.users set confirmation_token = '',
          phone_confirmed_at = coalesce(phone_confirmed_at, now()), updated_at = now() where id = $1""", user_id)
    await identities.mark_verified(conn, user_id, "phone")


async def apply_phone_change(conn: DbConn, user_id: uuid.UUID) -> None:
    await conn.execute("""update auth.users set phone = phone_change, phone_change = '', phone_change_token = '',
          phone_confirmed_at = now(), updated_at = now() where id = $1""", user_id)


async def confirm_email(conn: DbConn, user_id: uuid.UUID, column: str) -> None:
    """A confirmation/recovery/magic-link token (in `column`) was verified: spent, the address confirmed."""
    assert column in ("confirmation_token", "recovery_token")
    await conn.execute(
        f"""update auth.users set "{column}" = '', email_confirmed_at = coalesce(email_confirmed_at, now()),
              updated_at = now() where id = $1""", user_id)
    await identities.mark_verified(conn, user_id, "email")
    await onetime.delete_kind(conn, user_id, column)


async def count_email_change_link(conn: DbConn, user_id: uuid.UUID, column: str) -> None:
    """One of the two email-change links (`column`) was followed."""
    assert column in ("email_change_token_new", "email_change_token_current")
    await conn.execute(f"""update auth.users set "{column}" = '',
        email_change_confirm_status = email_change_confirm_status + 1 where id = $1""", user_id)


async def burn_codes(conn: DbConn, *, email: str = "", phone: str = "") -> None:
    """Invalidate every outstanding 6-digit code sent to `email` (lower-case) or `phone`."""
    rows = await conn.fetch(
        """update auth.users set confirmation_token = '', recovery_token = '', email_change_token_new = '',
             email_change_token_current = '', phone_change_token = '', reauthentication_token = '',
             updated_at = now()
           where ($1 <> '' and (lower(email) = $1 or lower(email_change) = $1))
              or ($2 <> '' and (phone = $2 or phone_change = $2))
           returning id""", email, phone)
    if rows:
        await onetime.delete_of_users(conn, [r["id"] for r in rows])


async def add_provider(conn: DbConn, user_id: uuid.UUID, provider: str) -> None:
    """`provider` joins app_metadata.providers."""
    await conn.execute(
        """update auth.users set raw_app_meta_data = jsonb_set(coalesce(raw_app_meta_data, '{}'::jsonb),
             '{providers}', (select coalesce(jsonb_agg(distinct p), '[]'::jsonb) from (
               select jsonb_array_elements_text(coalesce(raw_app_meta_data->'providers', '[]'::jsonb)) as p
               union select $2) s)), updated_at = now() where id = $1""", user_id, provider)


async def providers_from_identities(conn: DbConn, user_id: uuid.UUID) -> None:
    """app_metadata.providers becomes the providers of the user's identities (after an unlink)."""
    await conn.execute(
        """update auth.users set raw_app_meta_data = jsonb_set(raw_app_meta_data, '{providers}',
             (select coalesce(jsonb_agg(distinct provider), '[]'::jsonb) from auth.identities where user_id = $1)),
             updated_at = now() where id = $1""", user_id)


async def confirm_email_if_unconfirmed(conn: DbConn, user_id: uuid.UUID) -> None:
    await conn.execute("update auth.users set email_confirmed_at = coalesce(email_confirmed_at, now()) "
                       "where id = $1", user_id)


async def touch_sign_in(conn: DbConn, user_id: uuid.UUID) -> None:
    await conn.execute("update auth.users set last_sign_in_at = now(), updated_at = now() where id = $1", user_id)


async def set_invited(conn: DbConn, user_id: uuid.UUID) -> None:
    await conn.execute("update auth.users set invited_at = now() where id = $1", user_id)


async def set_banned_until(conn: DbConn, user_id: uuid.UUID, until: datetime | None) -> None:
    await conn.execute("update auth.users set banned_until = $2 where id = $1", user_id, until)


async def admin_update(conn: DbConn, user_id: uuid.UUID, values: dict[str, Any], *, confirm_email: bool = False,
                       confirm_phone: bool = False) -> None:
    """The admin API's direct column changes (`values`: keys of ADMIN_COLUMNS) in one UPDATE; nothing when
    there is nothing to change."""
    sets: list[str] = []
    args: list[Any] = [user_id]
    for column, value in values.items():
        args.append(value)
        sets.append(f'"{column}" = ${len(args)}{ADMIN_COLUMNS[column]}')
    if confirm_email:
        sets.append("email_confirmed_at = coalesce(email_confirmed_at, now())")
    if confirm_phone:
        sets.append("phone_confirmed_at = coalesce(phone_confirmed_at, now())")
    if sets:
        await conn.execute(f"update auth.users set {', '.join(sets)}, updated_at = now() where id = $1", *args)


async def soft_delete(conn: DbConn, user_id: uuid.UUID) -> None:
    """GoTrue's SoftDeleteUser on the row: identifiers obfuscated, secrets and metadata cleared, row kept."""
    await conn.execute(
        """update auth.users set deleted_at = now(), updated_at = now(),
             email = case when email is null then null else encode(sha256(convert_to(email || id::text,
               'UTF8')), 'hex') || '@deleted.invalid' end,
             phone = case when phone is null then null else null end, encrypted_password = '',
             confirmation_token = '', recovery_token = '', email_change = '', email_change_token_new = '',
             email_change_token_current = '', phone_change = '', phone_change_token = '',
             reauthentication_token = '', raw_user_meta_data = '{}'::jsonb, raw_app_meta_data =
             raw_app_meta_data where id = $1""", user_id)


async def delete(conn: DbConn, user_id: uuid.UUID) -> None:
    await conn.execute("delete from auth.users where id = $1", user_id)
