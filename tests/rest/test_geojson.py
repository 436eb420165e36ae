"""`Accept: application/geo+json` against a real PostGIS.

The embedded PostgreSQL has no PostGIS, so this module starts a second cluster from the system's PostgreSQL
binaries when a PostGIS build for them is installed (Debian: `postgresql-15-postgis-3`), puts a project of its
own on it, and skips otherwise. Without PostGIS the request fails as PostgREST's does (42883, no
`st_asgeojson`), checked on the main REST project.
"""

from __future__ import annotations

import asyncio
import glob
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from madbase.core.pgcluster import PgCluster
from tests.rest.conftest import Rest, _control
from tests.support.servers import MadbaseProcess, create_database, free_port

GEO = {"Accept": "application/geo+json"}


def _postgis_bin_dir() -> Path | None:
    for control in sorted(glob.glob("/usr/share/postgresql/*/extension/postgis.control"), reverse=True):
        version = Path(control).parts[-3]
        bin_dir = Path(f"/usr/lib/postgresql/{version}/bin")
        if (bin_dir / "postgres").exists() and (bin_dir / "initdb").exists():
            return bin_dir
    return None


@pytest.fixture(scope="module")
def geo(server: MadbaseProcess) -> Iterator[Rest]:
    bin_dir = _postgis_bin_dir()
    if bin_dir is None:
        pytest.skip("no PostGIS build for an installed PostgreSQL (e.g. apt-get install postgresql-15-postgis-3)")
    cluster = PgCluster(Path(tempfile.mkdtemp(prefix="madbase-test-postgis-")), free_port(), "postgres",
                        fsync=False, bin_dir=bin_dir)
    cluster.start()
    client = httpx.Client(timeout=30)
    ref = ""
    try:
        db_url = asyncio.run(create_database(cluster, "geo"))
        record = asyncio.run(_control(server, "create", name="geo-tests", db_url=db_url,
                                      login_role="authenticator_geo"))
        ref = record.ref
        rest = Rest(server, client, ref, db_url, record.anon_key, record.service_role_key, record.jwt_secret)
        deadline = time.time() + 20
        while client.get(rest.url + "/", headers=rest.headers()).status_code != 200 and time.time() < deadline:
            time.sleep(0.1)
        rest.sql("""
            create extension postgis;
            create table places (id int primary key, name text, geom geometry(Point, 4326));
            insert into places values (1, 'Pier', 'SRID=4326;POINT(1.5 2)'), (2, 'Nowhere', null),
                                      (3, 'Gate', 'SRID=4326;POINT(-3 4)');
            create function near(x float8) returns setof places language sql stable
              as 'select * from places where st_x(geom) > x';
            notify pgrst, 'reload schema';
        """)
        assert rest.wait_for("/places").status_code == 200
        yield rest
    finally:
        if ref:
            asyncio.run(_control(server, "delete", ref=ref))
        client.close()
        cluster.destroy()


def _point(x: float, y: float) -> dict[str, object]:
    return {"type": "Point", "coordinates": [x, y]}


def test_feature_collection(geo: Rest) -> None:
    r = geo.get("/places", role="service_role", order="id", headers=GEO)
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json; charset=utf-8"
    assert r.json() == {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": _point(1.5, 2), "properties": {"id": 1, "name": "Pier"}},
        # a NULL geometry, as this PostGIS (3.3) writes it; PostgREST's output is PostGIS's too
        {"type": "Feature", "geometry": {"type": None}, "properties": {"id": 2, "name": "Nowhere"}},
        {"type": "Feature", "geometry": _point(-3, 4), "properties": {"id": 3, "name": "Gate"}}]}
    r = geo.get("/places", role="service_role", select="name,geom", id="eq.3", headers=GEO)
    assert r.json()["features"] == [{"type": "Feature", "geometry": _point(-3, 4), "properties": {"name": "Gate"}}]
    r = geo.get("/places", role="service_role", id="eq.99", headers=GEO)
    assert r.json() == {"type": "FeatureCollection", "features": []}


def test_calls_and_mutations(geo: Rest) -> None:
    r = geo.get("/rpc/near", role="service_role", x="0", select="id,geom", headers=GEO)
    assert r.json() == {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": _point(1.5, 2), "properties": {"id": 1}}]}
    r = geo.request("POST", "/places?select=id,geom", json={"id": 4, "name": "New", "geom": "SRID=4326;POINT(5 6)"},
                    headers={**GEO, "Prefer": "return=representation, tx=rollback"})
    assert r.status_code == 201 and r.headers["content-type"].startswith("application/geo+json")
    assert r.json()["features"] == [{"type": "Feature", "geometry": _point(5, 6), "properties": {"id": 4}}]


def test_without_postgis(rest: Rest) -> None:
    r = rest.get("/authors", headers=GEO)
    assert r.status_code == 404 and r.json()["code"] == "42883"
    assert "st_asgeojson" in r.json()["message"]
