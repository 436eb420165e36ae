"""Request GUCs: claim names PostgreSQL cannot take as custom settings get no per-claim GUC."""

from __future__ import annotations


def test_claims_with_odd_names_get_no_per_claim_guc() -> None:
    from madbase.core.db import request_gucs

    gucs = request_gucs("authenticated", {"sub": "u", "https://x.io/claims": "v", "a-b": 1}, "{}")
    assert "request.jwt.claim.sub" in gucs.names
    assert not any("x.io" in n or "a-b" in n for n in gucs.names)
