"""The one-round-trip transaction setup (core `request_transaction(one_trip_setup=True)`): GUC values of any
text survive dollar-quoting unchanged and never escape their literal."""

from __future__ import annotations

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from madbase.core.db import RequestGucs, setup_sql


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=60).map(lambda s: s.replace("\x00", "")))
async def test_values_round_trip(fresh_db: str, value: str) -> None:
    conn = await asyncpg.connect(fresh_db)
    try:
        gucs = RequestGucs(["request.x", "request.jwt.claim.g$x"], [value, value + "$g"])
        await conn.execute(setup_sql(gucs, readonly=True))
        assert await conn.fetchval("select current_setting('request.x')") == value
        assert await conn.fetchval("select current_setting('request.jwt.claim.g$x')") == value + "$g"
        assert await conn.fetchval("select current_setting('transaction_read_only')") == "on"
        await conn.execute("ROLLBACK")
    finally:
        await conn.close()


async def test_adversarial(fresh_db: str) -> None:
    conn = await asyncpg.connect(fresh_db)
    try:
        for value in ["$g$); drop table x; --", "'; select 1; --", "$g1$ $g$ $$", "\\'", "$g"]:
            await conn.execute(setup_sql(RequestGucs(["request.v"], [value]), readonly=False))
            assert await conn.fetchval("select current_setting('request.v')") == value
            await conn.execute("ROLLBACK")
    finally:
        await conn.close()


def test_claims_with_odd_names_get_no_per_claim_guc() -> None:
    from madbase.core.db import request_gucs

    gucs = request_gucs("authenticated", {"sub": "u", "https://x.io/claims": "v", "a-b": 1}, "{}")
    assert "request.jwt.claim.sub" in gucs.names
    assert not any("x.io" in n or "a-b" in n for n in gucs.names)
