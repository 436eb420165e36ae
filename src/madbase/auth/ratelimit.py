"""Auth rate limits (per IP, per project) shared by every server process.

Built on the core's fixed-window `RateLimiter`: each process counts locally and syncs its hits into the
control database's counter table every 0.25 s, reading back the cluster-wide totals, so a decision costs no
database round trip and all processes agree within one sync interval. One limiter per window length;
keys are namespaced by project and window (`auth:<ref>:<window>:<name>`).
"""

from __future__ import annotations

from madbase.auth.errors import AuthError
from madbase.auth.http import Req
from madbase.core.ratelimit import RateLimiter

_limiters: dict[tuple[int, int], RateLimiter] = {}


def _limiter(req: Req, window: int) -> RateLimiter:
    runtime = req.ctx.runtime
    slot = (id(runtime), window)
    limiter = _limiters.get(slot)
    if limiter is None:
        limiter = RateLimiter(runtime.control_pool, window_seconds=window)
        limiter.start()
        _limiters[slot] = limiter
    return limiter


def hit(req: Req, name: str, limit: int, window: int) -> int | None:
    """Count one event; None when allowed, else seconds until the window resets."""
    if limit <= 0:
        return None
    # The window length is part of the key: limiters of different lengths share one counter table.
    return _limiter(req, window).hit(f"auth:{req.ctx.project.ref}:{window}:{name}", limit)


def enforce(req: Req, name: str, limit: int, window: int) -> None:
    retry = hit(req, name, limit, window)
    if retry is not None:
        raise AuthError("over_request_rate_limit", "Request rate limit reached", headers={"retry-after": str(retry)})


def enforce_ip(req: Req, name: str, limit: int) -> None:
    enforce(req, f"{name}:{req.ctx.client_ip}", limit, req.config.rate_limits.window_seconds)


def enforce_email(req: Req) -> None:
    """The project-wide hourly budget of auth mails."""
    if hit(req, "email_sent", req.config.rate_limits.email_sent, 3600) is not None:
        raise AuthError("over_email_send_rate_limit", "Email rate limit exceeded")


def enforce_sms(req: Req) -> None:
    if hit(req, "sms_sent", req.config.rate_limits.sms_sent, 3600) is not None:
        raise AuthError("over_sms_send_rate_limit", "SMS rate limit exceeded")


async def close() -> None:
    for limiter in list(_limiters.values()):
        await limiter.close()
    _limiters.clear()
