"""Joining a channel and re-authorising it, sans I/O: decisions and replies from the parsed request, the
project's settings and limits, and the authorisation answers the caller fetched.

The asyncio `socket.Connection` does only the I/O between the steps, in this order:

1. `parse` the `phx_join`, then `admit` it: channel count, join rate, the token (`identity`), filters,
   replay on a public channel — a `Refusal` ends the join (`close_socket`: also the socket, as Supabase
   does on a join flood);
2. start the hub, then `replication_refusal` (postgres_changes on a database without logical replication);
3. for a private topic fetch its `TopicRights` (realtime.messages policies), then `rights_refusal`;
4. fetch the replayed broadcasts and the subscription check (`authz.check_bindings`), persist, register;
5. `accepted`: every message of a successful join, in the order the clients expect.

`identity` uses the gateway's own token check (`core.authn.authenticate`) and adds what Realtime asks of a
channel token: a `role` and an `exp` claim, with Supabase's reasons.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import jwt as pyjwt
import orjson

from madbase.core.authn import AuthContext, authenticate
from madbase.core.errors import GatewayError, Kind
from madbase.realtime import protocol as pr
from madbase.realtime.filters import Filter, FilterError, parse_filter
from madbase.realtime.limits import Limits, RateWindow
from madbase.realtime.rls import TopicRights
from madbase.realtime.store import StoredMessage

if TYPE_CHECKING:
    from madbase.core.projects import Project


class Refusal(NamedTuple):
    """A join refused with this reason (Supabase's wording); `close_socket`: the socket is closed too."""

    reason: str
    close_socket: bool = False


class AuthFailure(Exception):
    """A channel token refused; the message is the reason shown to the client."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a channel acts for: the role and claims its RLS checks use, and when its token expires."""

    role: str
    claims: dict[str, Any]
    claims_json: str
    exp: float | None

    @property
    def sub(self) -> str:
        return str(self.claims.get("sub", ""))

    def same_person(self, role: str, claims: dict[str, Any]) -> bool:
        return (self.role, self.claims.get("sub")) == (role, claims.get("sub"))


@dataclass(frozen=True, slots=True)
class JoinRequest:
    """A join that passed `admit`: what the rest of the join works from."""

    config: pr.JoinConfig
    identity: Identity
    filters: tuple[Filter | None, ...]  # one per postgres_changes binding


DB_UNAVAILABLE = Refusal("Unable to subscribe to changes: database unavailable")
LOG_UNAVAILABLE = Refusal("Unable to subscribe to changes: change log unavailable")
REPLAY_FAILED = Refusal("UnableToReplayMessages: Realtime was unable to replay messages")
DB_UNREACHABLE_REASON = "Realtime was unable to connect to the project database"


# -- tokens --------------------------------------------------------------------------------------------

def identity(project: Project, auth: AuthContext, token: str | None, now: float) -> Identity:
    """The identity of a channel: the socket's (checked by the gateway) or that of the join's / a later
    `access_token`. Raises AuthFailure with Supabase's reason."""
    if token is None or token.startswith("sb_"):  # a new-style API key is no identity: the socket's applies
        exp = auth.claims.get("exp")
        return Identity(auth.role, auth.claims, auth.claims_json, float(exp) if isinstance(exp, int | float) else None)
    if not token.strip():  # the gateway's parser would read it as "no bearer", i.e. anonymous
        raise AuthFailure("InvalidJWTToken: invalid JWT: unable to parse or verify signature, token is malformed")
    try:
        checked = authenticate(project, None, f"Bearer {token}", key_required=False)
    except GatewayError as exc:
        if exc.kind is Kind.JWT_EXPIRED:
            raise AuthFailure(f"InvalidJWTToken: Token has expired {expired_ago(token, now)} seconds ago") from None
        if exc.kind is Kind.ROLE_NOT_ALLOWED:
            # Verified, but its role is missing or not an API role: Supabase tells the two apart.
            claimed = project.verifier.verify(token).claims.get("role")
            if not isinstance(claimed, str):
                raise AuthFailure("Fields `role` and `exp` are required in JWT") from None
            raise AuthFailure(f"Unauthorized: role {claimed!r} is not allowed") from None
        raise AuthFailure(f"InvalidJWTToken: {exc.message}") from None
    exp = checked.claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise AuthFailure("Fields `role` and `exp` are required in JWT")
    if exp < now:  # the gateway's leeway does not apply to a channel
        raise AuthFailure(f"InvalidJWTToken: Token has expired {int(now - exp)} seconds ago")
    return Identity(checked.role, checked.claims, checked.claims_json, float(exp))


def expired_ago(token: str, now: float) -> int:
    """Seconds since the (signature-checked elsewhere) token's `exp`, for the error message; 0 if unknown."""
    try:
        exp = pyjwt.decode(token, options={"verify_signature": False}).get("exp")
    except pyjwt.PyJWTError:
        return 0
    return max(0, int(now - float(exp))) if isinstance(exp, int | float) else 0


def new_token(body: Any, current: str | None) -> str | None:
    """The token of an `access_token` event worth checking: None for a missing, repeated or `sb_…` key
    (Supabase ignores those)."""
    token = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token or token.startswith("sb_") or token == current:
        return None
    return token


# -- the join ------------------------------------------------------------------------------------------

def parse(msg: pr.Message) -> pr.JoinConfig | Refusal:
    try:
        return pr.parse_join(msg)
    except pr.ProtocolError as exc:
        return Refusal(str(exc))


def admit(cfg: pr.JoinConfig, *, channels_open: int, limits: Limits, joins_rate: RateWindow, project: Project,
          auth: AuthContext, now: float) -> JoinRequest | Refusal:
    """The checks needing no database: limits, token, filters, replay on a public channel. `channels_open`:
    the socket's other channels (a re-join of a topic replaces its channel)."""
    if channels_open >= limits.channels_per_client:
        return Refusal("ChannelRateLimitReached: Too many channels")
    if not joins_rate.take(limits.joins_per_second):
        return Refusal("ClientJoinRateLimitReached: Too many joins per second", close_socket=True)
    try:
        who = identity(project, auth, cfg.access_token, now)
    except AuthFailure as exc:
        return Refusal(str(exc))
    filters: list[Filter | None] = []
    for binding in cfg.bindings:
        try:
            filters.append(parse_filter(binding.filter) if binding.filter else None)
        except FilterError as exc:
            return Refusal(f"Unable to subscribe to changes with given parameters: {exc}")
    if cfg.replay is not None and not cfg.private:
        return Refusal("UnableToReplayMessages: Replay is not allowed for public channels")
    return JoinRequest(cfg, who, tuple(filters))


def replication_refusal(req: JoinRequest, pg_error: str | None) -> Refusal | None:
    """postgres_changes are refused — rather than SUBSCRIBED with no change ever arriving — when the
    project's database cannot replicate (wal_level, REPLICATION, slots) or is unreachable."""
    if req.config.bindings and pg_error is not None:
        return Refusal(f"Unable to subscribe to changes: {pg_error}")
    return None


def rights_refusal(req: JoinRequest, rights: TopicRights) -> Refusal | None:
    """As Supabase: joining a private topic needs the broadcast or the presence read policy; `replay`
    needs the broadcast read policy."""
    cfg = req.config
    if cfg.private and not rights.may_join:
        return Refusal(f"Unauthorized: You do not have permissions to read from this Channel topic: {cfg.name}")
    if cfg.replay is not None and not rights.broadcast_read:
        return Refusal("UnableToReplayMessages: Replay is not allowed on this channel")
    return None


def subscribes(req: JoinRequest, pg_error: str | None, refused: str | None) -> bool:
    """Does the join create postgres_changes subscriptions? (Refused ones: the join still succeeds.)"""
    return bool(req.config.bindings) and pg_error is None and refused is None


def shows_presence(req: JoinRequest, rights: TopicRights) -> bool:
    """Does the join reply carry `presence_state` (presence enabled, and readable on a private topic)?"""
    return req.config.presence_enabled and rights.presence_read


def accepted(msg: pr.Message, req: JoinRequest, *, join_ref: str | None, rights: TopicRights, refused: str | None,
             pg_error: str | None, presence_state: dict[str, Any] | None, replayed: list[StoredMessage],
             backlog: list[pr.Message]) -> list[pr.Message]:
    """The messages of a successful join, in order: the reply echoing the bindings, presence_state, the
    postgres_changes status, replication_ready, replayed broadcasts, then the changes a ghost held."""
    cfg, topic = req.config, msg.topic
    out = [pr.reply(msg, "ok", {"postgres_changes": [b.echo for b in cfg.bindings]})]
    if shows_presence(req, rights) and presence_state is not None:
        out.append(pr.push(topic, "presence_state", presence_state, join_ref))
    if cfg.bindings:
        if refused is not None:
            out.append(pr.system(topic, "postgres_changes", "error", refused, join_ref))
        elif pg_error is None:
            out.append(pr.system(topic, "postgres_changes", "ok", "Subscribed to PostgreSQL", join_ref))
        else:
            out.append(pr.system(topic, "postgres_changes", "error", pg_error, join_ref))
    if cfg.replication_ready:
        out.append(pr.system(topic, "system", "ok", "Replication connection established", join_ref))
    for item in replayed:
        out.append(pr.push(topic, "broadcast", {
            "type": "broadcast", "event": item.event,
            "payload": orjson.Fragment(item.payload if item.payload is not None else "null"),
            "meta": {"replayed": True, "id": str(item.id)}}, join_ref))
    out.extend(backlog)
    return out


# -- re-authorisation (access_token) -------------------------------------------------------------------

class Recheck(NamedTuple):
    """The answer to a new token on a live channel."""

    close: str | None  # reason to shut the channel (system error + phx_close)
    refused: str | None  # reason to end its postgres_changes subscriptions (the channel stays)
    rights: TopicRights


def recheck(cfg: pr.JoinConfig, rights: TopicRights | None, refused: str | None) -> Recheck:
    """`rights`: the private topic's policies for the new identity (None: the database could not be asked)."""
    denied = TopicRights(False, False, False, False)
    if rights is None:
        return Recheck(DB_UNREACHABLE_REASON, None, denied)
    if cfg.private and not rights.may_join:
        return Recheck(f"You no longer have permission to read from this Channel topic: {cfg.name}", None, denied)
    return Recheck(None, refused, rights)
