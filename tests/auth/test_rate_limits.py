"""Rate limits are counted in Postgres (the control plane's counter table), so two server processes on one
project share them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from tests.auth.conftest import BASE_CONFIG, AuthEnv, new_email
from tests.support.servers import MadbaseProcess, external_db_env


@pytest.fixture(scope="module")
def second_server(auth: AuthEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MadbaseProcess]:
    proc = MadbaseProcess(tmp_path_factory.mktemp("auth-second"), external_db_env(auth.server.db_url)).start()
    try:
        yield proc
    finally:
        proc.stop()


async def reset_counters(auth: AuthEnv) -> None:
    conn = await asyncpg.connect(auth.server.db_url)
    try:
        await conn.execute("delete from madbase_control.rate_counters where key like 'auth:%'")
    finally:
        await conn.close()


async def test_signup_limit_is_shared_across_processes(auth: AuthEnv, second_server: MadbaseProcess) -> None:
    await reset_counters(auth)
    limits = {**BASE_CONFIG["rate_limits"], "sign_in_sign_ups": 4, "window_seconds": 3600}
    await auth.set_config(rate_limits=limits)
    try:
        await asyncio.sleep(1.0)  # the second process picks the config change up through NOTIFY too
        statuses = []
        async with httpx.AsyncClient(timeout=30) as client:
            for i in range(6):
                base = (auth.server if i % 2 == 0 else second_server).url
                r = await client.post(base + "/auth/v1/token?grant_type=password",
                                      json={"email": new_email(), "password": "whatever-1"},
                                      headers=auth.headers())
                statuses.append(r.status_code)
                await asyncio.sleep(1.0)  # a few sync intervals (0.25 s): the processes agree from here on
                if r.status_code == 429:
                    assert r.json() == {"code": "over_request_rate_limit", "message": "Request rate limit reached"}
        assert statuses == [400, 400, 400, 400, 429, 429]
    finally:
        await auth.set_config()


async def test_email_send_budget(auth: AuthEnv) -> None:
    await reset_counters(auth)
    limits = {**BASE_CONFIG["rate_limits"], "email_sent": 1}
    await auth.set_config(mailer_autoconfirm=False, rate_limits=limits)
    try:
        codes = []
        for _ in range(3):
            r = await auth.post("/otp", {"email": new_email()})
            codes.append(r.status_code if r.status_code == 200 else r.json()["code"])
        assert codes[-1] == "over_email_send_rate_limit"
    finally:
        await auth.set_config()
