from tests.rest.conftest import Rest


def test_smoke(rest: Rest) -> None:
    r = rest.get("/authors", select="id,name", order="id")
    assert r.status_code == 200, r.text
    assert r.json() == [{"id": 1, "name": "Ann"}, {"id": 2, "name": "Bob"}, {"id": 3, "name": "Cid"}]
