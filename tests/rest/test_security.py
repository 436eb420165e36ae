"""RLS and grants by role (anon, a signed-in user with a minted JWT, service_role) and schema-cache reload."""

from __future__ import annotations

import uuid

from tests.rest.conftest import Rest

USER_A = "00000000-0000-0000-0000-00000000000a"


def user_headers(rest: Rest, sub: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {rest.user_token(sub)}"}


def test_rls_reads(rest: Rest) -> None:
    anon = rest.get("/notes", select="body", order="id")
    assert anon.json() == [{"body": "public note"}]
    user = rest.get("/notes", select="body", order="id", headers=user_headers(rest, USER_A))
    assert user.json() == [{"body": "note of a"}]
    service = rest.get("/notes", select="body", order="id", role="service_role")
    assert [b["body"] for b in service.json()] == ["public note", "note of a", "note of b"]


def test_rls_writes(rest: Rest) -> None:
    h = user_headers(rest, USER_A)
    r = rest.request("POST", "/notes?select=body", role="anon", json={"owner": USER_A, "body": "mine"},
                     headers={**h, "Prefer": "return=representation"})
    assert r.status_code == 201 and r.json() == [{"body": "mine"}]
    r = rest.request("POST", "/notes", role="anon", json={"owner": str(uuid.uuid4()), "body": "not mine"},
                     headers=h)
    assert r.status_code == 403 and r.json()["code"] == "42501"
    r = rest.request("PATCH", "/notes?body=eq.note of b", role="anon", json={"body": "hacked"}, headers=h)
    assert r.status_code == 204 and r.headers["content-range"] == "*/*"
    assert rest.get("/notes", body="eq.note of b", role="service_role").json() != []
    r = rest.request("DELETE", "/notes?body=eq.mine", role="anon", headers=h)
    assert r.status_code == 204


def test_anon_insert_only(rest: Rest) -> None:
    r = rest.request("POST", "/feedback", role="anon", json={"msg": "hi"})
    assert r.status_code == 201
    r = rest.request("POST", "/feedback", role="anon", json={"msg": "hi"}, headers={"Prefer": "return=representation"})
    assert r.status_code == 401 and r.json()["code"] == "42501"
    assert rest.get("/feedback", role="anon").json() == []


def test_privileges(rest: Rest) -> None:
    r = rest.get("/secrets", role="anon")
    assert r.status_code == 401 and r.json()["code"] == "42501"
    r = rest.get("/secrets", role="anon", headers=user_headers(rest, USER_A))
    assert r.status_code == 403
    assert rest.get("/secrets", role="service_role").status_code == 200


def test_bad_jwt(rest: Rest) -> None:
    r = rest.get("/posts", headers={"Authorization": "Bearer not.a.jwt"})
    assert r.status_code == 401
    assert r.json()["code"] == "PGRST301"


def test_schema_reload_after_ddl(rest: Rest) -> None:
    name = "t_" + uuid.uuid4().hex[:8]
    assert rest.get(f"/{name}").status_code == 404
    rest.sql(f"create table {name} (id int primary key, label text); insert into {name} values (1, 'x')")
    r = rest.wait_for(f"/{name}")
    assert r.status_code == 200 and r.json() == [{"id": 1, "label": "x"}]
    rest.sql(f"alter table {name} add column extra int default 5")
    deadline = 50
    while deadline:
        r = rest.get(f"/{name}", select="extra", role="service_role")
        if r.status_code == 200:
            break
        deadline -= 1
        import time

        time.sleep(0.1)
    assert r.json() == [{"extra": 5}]
    rest.sql(f"drop table {name}")
    assert rest.wait_for(f"/{name}", status=404).status_code == 404


def test_pre_request_and_raise_pgrst(rest: Rest) -> None:
    import time

    rest.set_config('{"db_pre_request": "public.check_request"}')
    try:
        deadline = time.time() + 10
        while True:
            r = rest.get("/authors", select="id", headers={"X-Block": "yes"})
            if r.status_code == 403 or time.time() > deadline:
                break
            time.sleep(0.2)
        assert r.status_code == 403
        assert r.json() == {"code": "BLOCKED", "message": "blocked by pre-request", "details": None, "hint": None}
        assert r.headers["x-reason"] == "pre"
        assert rest.get("/authors", select="id", id="eq.1").json() == [{"id": 1}]
    finally:
        rest.unset_config("db_pre_request")
        deadline = time.time() + 10
        while rest.get("/authors", headers={"X-Block": "yes"}).status_code == 403 and time.time() < deadline:
            time.sleep(0.2)


def test_custom_exposed_schema(rest: Rest) -> None:
    import time

    rest.sql("create schema if not exists api; create table if not exists api.widgets (id int primary key, name text);"
             "insert into api.widgets values (1, 'cog') on conflict do nothing;"
             "grant usage on schema api to anon, authenticated, service_role;"
             "grant all on api.widgets to anon, authenticated, service_role;")
    rest.set_config('{"db_schemas": "public,api"}')
    try:
        deadline = time.time() + 10
        while True:
            r = rest.get("/widgets", headers={"Accept-Profile": "api"})
            if r.status_code == 200 or time.time() > deadline:
                break
            time.sleep(0.2)
        assert r.status_code == 200 and r.json() == [{"id": 1, "name": "cog"}]
        r = rest.request("POST", "/widgets?select=name", json={"id": 2, "name": "gear"},
                         headers={"Content-Profile": "api", "Prefer": "return=representation"})
        assert r.status_code == 201 and r.json() == [{"name": "gear"}]
        r = rest.get("/widgets")
        assert r.status_code == 404 and r.json()["code"] == "PGRST205"
        r = rest.get("/widgets", headers={"Accept-Profile": "graphql_public"})
        assert r.status_code == 406 and r.json()["hint"] == "Only the following schemas are exposed: public, api"
    finally:
        rest.unset_config("db_schemas")
        deadline = time.time() + 10
        while rest.get("/widgets", headers={"Accept-Profile": "api"}).status_code != 406 and time.time() < deadline:
            time.sleep(0.2)


def test_reload_survives_listener_loss(rest: Rest) -> None:
    killed = rest.sql("select pg_terminate_backend(pid) from pg_stat_activity where query ilike 'listen%pgrst%' "
                      "and datname = current_database()", fetch=True)
    assert len(killed) >= 1
    name = "t_" + uuid.uuid4().hex[:8]
    rest.sql(f"create table {name} (id int primary key)")
    assert rest.wait_for(f"/{name}", timeout=15).status_code == 200
    rest.sql(f"drop table {name}")


def test_reloads_do_not_fail_requests_in_flight(rest: Rest) -> None:
    import threading

    statuses: list[int] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            statuses.append(rest.get("/posts", select="id,comments(id)", order="id").status_code)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for _ in range(8):
            rest.sql("notify pgrst, 'reload schema'")
            import time

            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert statuses and set(statuses) == {200}


def test_jwt_errors_in_postgrest_shape(rest: Rest) -> None:
    import time

    from madbase.core.jwt import sign_hs256

    expired = sign_hs256({"sub": USER_A, "role": "authenticated", "exp": int(time.time()) - 60},
                         rest.jwt_secret)
    r = rest.get("/posts", headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401
    body = r.json()
    assert body["code"] == "PGRST303" and set(body) == {"code", "details", "hint", "message"}
    assert r.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    forged = sign_hs256({"sub": USER_A, "role": "authenticated"}, "not-the-project-secret-at-all-0123456789")
    r = rest.get("/posts", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401 and r.json()["code"] == "PGRST301"


def test_column_privileges_with_representation(rest: Rest) -> None:
    h = user_headers(rest, USER_A)
    r = rest.request("POST", "/accounts?select=id,name", role="anon", json={"name": "acme"},
                     headers={**h, "Prefer": "return=representation"})
    assert r.status_code == 201, r.text
    new_id = r.json()[0]["id"]
    r = rest.request("PATCH", f"/accounts?id=eq.{new_id}&select=name", role="anon", json={"name": "acme2"},
                     headers={**h, "Prefer": "return=representation"})
    assert r.status_code == 200 and r.json() == [{"name": "acme2"}]
    r = rest.request("PATCH", f"/accounts?id=eq.{new_id}", role="anon", json={"name": "acme3"}, headers=h)
    assert r.status_code == 204
    r = rest.get("/accounts", role="anon", select="secret", headers=h)
    assert r.status_code == 403 and r.json()["code"] == "42501"


def test_miss_refreshes_a_stale_cache_without_event_triggers(rest: Rest) -> None:
    import time

    name = "t_" + uuid.uuid4().hex[:8]
    rest.sql("alter event trigger pgrst_ddl_watch disable")
    try:
        rest.sql(f"create table {name} (id int primary key)")
        time.sleep(2.2)
        assert rest.get(f"/{name}", role="service_role").status_code == 200
    finally:
        rest.sql("alter event trigger pgrst_ddl_watch enable")
        rest.sql(f"drop table if exists {name}")


def test_run_request_is_the_login_roles_alone(rest: Rest) -> None:
    """The one-round-trip request function switches roles; the roles a request runs as must not reach it."""
    for role in ("anon", "authenticated", "service_role"):
        fn = "madbase.run_prepared(text, text, text, text[], text, boolean)"
        out = rest.sql(f"select has_function_privilege('{role}', '{fn}', 'execute') as f, "
                       f"has_schema_privilege('{role}', 'madbase', 'usage') as u", fetch=True)
        assert out and not out[0]["f"] and not out[0]["u"], role
    resp = rest.request("POST", "/rpc/run_prepared", json={})
    assert resp.status_code == 404 and resp.json()["code"] == "PGRST202"
