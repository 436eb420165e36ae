"""Baseline of the adversarial suite: the two projects of the security server are isolated from each other."""

from __future__ import annotations

import httpx

from tests.security.conftest import Project, no_500


def test_keys_and_tokens_of_one_project_are_refused_by_the_other(project_a: Project, project_b: Project,
                                                                  client: httpx.Client) -> None:
    for own, other in ((project_a, project_b), (project_b, project_a)):
        # the other project's anon key as apikey
        r = no_500(client.get(own.url + "/rest/v1/", headers={**own.headers(), "apikey": other.anon_key}))
        assert r.status_code == 401, r.text
        # a user JWT signed with the other project's secret
        token = other.user_token("00000000-0000-0000-0000-000000000001")
        r = no_500(client.get(own.url + "/auth/v1/user", headers=own.headers(token=token)))
        assert r.status_code in (401, 403), r.text
