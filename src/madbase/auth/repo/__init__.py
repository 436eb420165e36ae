"""Auth's repository layer: every SQL statement of the auth service, behind named async functions.

One module per concept (users, identities, sessions and refresh tokens, MFA factors and challenges, one-time
tokens, flow state, audit, mail outbox, signing keys, counters). Handlers and flows call these functions and
never hold SQL of their own. Functions take a connection of a transaction acting as `supabase_auth_admin`
(`core.db.internal_transaction`), except `users.get_user_json`, which is a whole request in one round trip
(`core.db.run_request_statement`). Values are always bind parameters; identifiers are fixed in the code.
"""
