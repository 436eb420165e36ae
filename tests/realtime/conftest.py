"""Realtime test helpers: user JWTs for the session server, unique tables added to the publication."""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from madbase.core.jwt import sign_hs256
from madbase.core.pgcluster import PgCluster
from tests.support.servers import MadbaseProcess, free_port


def user_token(server: MadbaseProcess, sub: str | None = None, *, role: str = "authenticated",
               ttl: int = 3600, **extra: Any) -> str:
    now = int(time.time())
    claims = {"sub": sub or str(uuid.uuid4()), "role": role, "aud": "authenticated", "iat": now,
              "exp": now + ttl, **extra}
    return sign_hs256(claims, server.jwt_secret)


@pytest.fixture
def table_name() -> str:
    return "rt_" + uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def rt_cluster() -> Iterator[PgCluster]:
    """A PostgreSQL cluster of our own for tests that start their own servers.

    The login role (`authenticator`) is cluster-wide and every new project sets its password, so a server
    started on the shared test cluster would lock the session server's pool out of new connections.
    """
    root = Path(tempfile.mkdtemp(prefix="madbase-rt-pg-"))
    cluster = PgCluster(root, free_port(), "postgres", fsync=False)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.destroy()
