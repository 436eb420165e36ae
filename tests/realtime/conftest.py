"""Realtime test helpers: user JWTs for the session server, unique tables added to the publication."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from madbase.core.jwt import sign_hs256
from tests.support.servers import MadbaseProcess


def user_token(server: MadbaseProcess, sub: str | None = None, *, role: str = "authenticated",
               ttl: int = 3600, **extra: Any) -> str:
    now = int(time.time())
    claims = {"sub": sub or str(uuid.uuid4()), "role": role, "aud": "authenticated", "iat": now,
              "exp": now + ttl, **extra}
    return sign_hs256(claims, server.jwt_secret)


@pytest.fixture
def table_name() -> str:
    return "rt_" + uuid.uuid4().hex[:10]

