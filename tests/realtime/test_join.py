"""The sans-I/O join core (realtime/join.py): decisions and replies from a parsed phx_join, the project's
limits and the authorisation answers — no socket, no database, real projects and real signed tokens."""

from __future__ import annotations

import time
from typing import Any

import pytest

from madbase.core.authn import ANONYMOUS, AuthContext
from madbase.core.control import ProjectRecord
from madbase.core.jwt import make_api_key, sign_hs256
from madbase.core.projects import Project
from madbase.realtime import join
from madbase.realtime import protocol as pr
from madbase.realtime.limits import Limits, RateWindow
from madbase.realtime.rls import PUBLIC_RIGHTS, TopicRights
from madbase.realtime.store import StoredMessage

SECRET = "a-realtime-test-secret-of-decent-length"
REF = "rrrrrrrrrrrrrrrrrrrr"
LIMITS = Limits(max_payload_bytes=1000, events_per_second=10, joins_per_second=2, channels_per_client=3)


def project() -> Project:
    return Project.from_record(ProjectRecord(
        ref=REF, name="p", status="active", db_url="postgresql://x/y", jwt_secret=SECRET,
        anon_key=make_api_key(SECRET, "anon", REF), service_role_key=make_api_key(SECRET, "service_role", REF),
        login_role="authenticator", login_password="pw"))


def token(**claims: Any) -> str:
    return sign_hs256(claims, SECRET)


def join_msg(payload: dict[str, Any], topic: str = "realtime:room") -> pr.Message:
    return pr.Message(topic, "phx_join", payload, "1", "1")


def admit(payload: dict[str, Any], *, channels_open: int = 0, rate: RateWindow | None = None,
          auth: AuthContext = ANONYMOUS) -> join.JoinRequest | join.Refusal:
    cfg = join.parse(join_msg(payload))
    assert isinstance(cfg, pr.JoinConfig)
    return join.admit(cfg, channels_open=channels_open, limits=LIMITS, joins_rate=rate or RateWindow(),
                      project=project(), auth=auth, now=time.time())


def changes(*bindings: dict[str, Any]) -> dict[str, Any]:
    return {"config": {"postgres_changes": list(bindings)}}


def test_parse_refuses_bad_topics_and_replay_params() -> None:
    assert join.parse(join_msg({}, "realtime:")) == join.Refusal("TopicNameRequired: You must provide a topic name")
    bad = join.parse(join_msg({"config": {"broadcast": {"replay": {"since": -1}}}}))
    assert bad == join.Refusal("UnableToReplayMessages: Replay params are not valid")


def test_admit_uses_the_socket_identity_without_a_token() -> None:
    req = admit({})
    assert isinstance(req, join.JoinRequest)
    assert (req.identity.role, req.identity.sub, req.identity.exp) == ("anon", "", None)


def test_admit_takes_the_join_token() -> None:
    exp = int(time.time()) + 60
    req = admit({"access_token": token(role="authenticated", sub="u1", exp=exp)})
    assert isinstance(req, join.JoinRequest)
    assert (req.identity.role, req.identity.sub, req.identity.exp) == ("authenticated", "u1", exp)
    assert '"sub":"u1"' in req.identity.claims_json


def test_project_keys_are_accepted_as_tokens() -> None:
    req = admit({"access_token": project().record.service_role_key})
    assert isinstance(req, join.JoinRequest) and req.identity.role == "service_role"


@pytest.mark.parametrize(("claims", "expires_in", "reason"), [
    ({"role": "authenticated"}, -100, "InvalidJWTToken: Token has expired 100 seconds ago"),
    ({"role": "authenticated"}, -5, "InvalidJWTToken: Token has expired 5 seconds ago"),  # no leeway
    ({"role": "authenticated"}, None, "Fields `role` and `exp` are required in JWT"),
    ({}, 3600, "Fields `role` and `exp` are required in JWT"),
    ({"role": "postgres"}, 3600, "Unauthorized: role 'postgres' is not allowed"),
])
def test_bad_tokens_are_refused_with_supabase_reasons(claims: dict[str, Any], expires_in: int | None,
                                                       reason: str) -> None:
    if expires_in is not None:
        # Half a second further in the past: the message counts whole seconds since `exp`.
        claims = {**claims, "exp": time.time() + expires_in - (0.5 if expires_in < 0 else 0)}
    assert admit({"access_token": token(**claims)}) == join.Refusal(reason)


def test_forged_and_malformed_tokens_are_refused() -> None:
    forged = sign_hs256({"role": "service_role", "exp": time.time() + 60}, "another-secret-of-decent-length-000")
    for bad in (forged, "not-a-jwt", "   "):
        refusal = admit({"access_token": bad})
        assert isinstance(refusal, join.Refusal) and refusal.reason.startswith("InvalidJWTToken: ")
        assert not refusal.close_socket


def test_channel_and_join_rate_limits() -> None:
    assert admit({}, channels_open=3) == join.Refusal("ChannelRateLimitReached: Too many channels")
    for _ in range(10):  # fixed one-second windows: retry if the three joins straddled a second boundary
        rate = RateWindow()
        first = admit({}, rate=rate)
        window = rate.second
        second, flood = admit({}, rate=rate), admit({}, rate=rate)
        if rate.second == window:
            break
    assert isinstance(first, join.JoinRequest) and isinstance(second, join.JoinRequest)
    assert flood == join.Refusal("ClientJoinRateLimitReached: Too many joins per second", close_socket=True)


def test_bad_filters_and_public_replay_are_refused() -> None:
    refusal = admit(changes({"event": "*", "schema": "public", "table": "t", "filter": "id=nope.1"}))
    assert isinstance(refusal, join.Refusal)
    assert refusal.reason.startswith("Unable to subscribe to changes with given parameters: ")
    replay = admit({"config": {"broadcast": {"replay": {"since": 0}}}})
    assert replay == join.Refusal("UnableToReplayMessages: Replay is not allowed for public channels")
    req = admit(changes({"event": "INSERT", "schema": "public", "table": "t", "filter": "id=eq.1"},
                        {"event": "*", "schema": "public"}))
    assert isinstance(req, join.JoinRequest)
    assert [f is not None for f in req.filters] == [True, False]


def test_replication_problem_refuses_only_postgres_changes() -> None:
    with_changes = admit(changes({"event": "*", "schema": "public"}))
    broadcast_only = admit({})
    assert isinstance(with_changes, join.JoinRequest) and isinstance(broadcast_only, join.JoinRequest)
    assert join.replication_refusal(with_changes, None) is None
    problem = "Logical replication is not available on the project database: wal_level must be logical"
    assert join.replication_refusal(with_changes, problem) == join.Refusal(
        f"Unable to subscribe to changes: {problem}")
    assert join.replication_refusal(broadcast_only, problem) is None


def test_private_topic_rights() -> None:
    req = admit({"config": {"private": True, "broadcast": {"replay": {"since": 0, "limit": 5}}}})
    assert isinstance(req, join.JoinRequest)
    assert join.rights_refusal(req, PUBLIC_RIGHTS) is None
    nothing = TopicRights(False, False, False, False)
    assert join.rights_refusal(req, nothing) == join.Refusal(
        "Unauthorized: You do not have permissions to read from this Channel topic: room")
    presence_only = TopicRights(False, False, True, True)
    assert join.rights_refusal(req, presence_only) == join.Refusal(
        "UnableToReplayMessages: Replay is not allowed on this channel")


def test_accepted_messages_in_client_order() -> None:
    payload = {"config": {"presence": {"enabled": True}, "broadcast": {"replication_ready": True},
                          "postgres_changes": [{"event": "INSERT", "schema": "public", "table": "t"}]}}
    msg = join_msg(payload)
    req = admit(payload)
    assert isinstance(req, join.JoinRequest)
    backlog = [pr.push("realtime:room", "postgres_changes", {"ids": [1]}, "1")]
    out = join.accepted(msg, req, join_ref="1", rights=PUBLIC_RIGHTS, refused=None, pg_error=None,
                        presence_state={"k": {"metas": []}}, replayed=[StoredMessage(7, "ev", '{"a":1}')],
                        backlog=backlog)
    assert [(m.event, m.payload.get("status") if isinstance(m.payload, dict) else None) for m in out] == [
        ("phx_reply", "ok"), ("presence_state", None), ("system", "ok"), ("system", "ok"), ("broadcast", None),
        ("postgres_changes", None)]
    echoed = out[0].payload["response"]["postgres_changes"]
    assert echoed == [{"event": "INSERT", "schema": "public", "table": "t", "id": req.config.bindings[0].id}]
    assert out[2].payload["message"] == "Subscribed to PostgreSQL"
    assert out[4].payload["meta"] == {"replayed": True, "id": "7"}
    refused = join.accepted(msg, req, join_ref="1", rights=TopicRights(True, True, False, False),
                            refused="invalid column", pg_error=None, presence_state=None, replayed=[], backlog=[])
    assert [(m.event, m.payload.get("message")) for m in refused[1:]] == [
        ("system", "invalid column"), ("system", "Replication connection established")]
    assert not join.subscribes(req, None, "invalid column") and join.subscribes(req, None, None)
    assert not join.subscribes(req, "no replication", None)


def test_access_token_updates() -> None:
    assert join.new_token({"access_token": "t1"}, None) == "t1"
    assert join.new_token({"access_token": "t1"}, "t1") is None  # unchanged
    assert join.new_token({"access_token": "sb_publishable_x"}, None) is None  # Supabase ignores keys
    assert join.new_token({"access_token": ""}, None) is None
    assert join.new_token("junk", None) is None
    cfg = pr.JoinConfig(name="room", private=True)
    assert join.recheck(cfg, None, None).close == join.DB_UNREACHABLE_REASON
    lost = join.recheck(cfg, TopicRights(False, True, False, True), None)
    assert lost.close == "You no longer have permission to read from this Channel topic: room"
    kept = join.recheck(cfg, PUBLIC_RIGHTS, "refused")
    assert (kept.close, kept.refused, kept.rights) == (None, "refused", PUBLIC_RIGHTS)
    assert join.recheck(pr.JoinConfig(name="room"), PUBLIC_RIGHTS, None) == join.Recheck(None, None, PUBLIC_RIGHTS)
