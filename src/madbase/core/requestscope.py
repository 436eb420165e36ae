"""What a request transaction needs to know about the HTTP request it serves, without a parameter on every call.

The gateway sets one `RequestScope` per HTTP request in a context variable (each ASGI request runs in a task of
its own, so the value is the request's alone). `core/db.py` reads it when it takes a pooled connection:

- `client_key`: who the request counts against for the per-client share of the project's pool (the client IP for
  anon/authenticated requests; None for service_role and the services' own work, which are not limited);
- `watch`: the connection's disconnect watch. The HTTP protocol (`madbase.httpprotocol`) fires it when the client
  goes away; while a request holds or waits for a pooled connection the watch cancels that task, so an abandoned
  request stops its query (asyncpg cancels the server-side statement when the awaiting task is cancelled) and
  gives its pool slot back instead of running on for nobody.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar


class ClientGone(Exception):
    """The client went away before its request body was complete: nothing is done with a truncated body."""


class DisconnectWatch:
    """Set by the HTTP protocol per request; cancels the armed task once the client has gone."""

    __slots__ = ("_task", "gone")

    def __init__(self) -> None:
        self.gone = False
        self._task: asyncio.Task[object] | None = None

    def arm(self) -> None:
        """Cancel the current task if the client goes away before `disarm` (cancelled now if already gone)."""
        task = asyncio.current_task()
        if self.gone and task is not None:
            task.cancel()
            return
        self._task = task

    def disarm(self) -> None:
        self._task = None

    def fire(self) -> None:
        """The client's connection was lost (called by the protocol, on the event loop)."""
        self.gone = True
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()


class RequestScope:
    """`task`: the request's own task. Tasks started while a request runs (a mail sender poked by a signup, a
    background refresh) copy its context; they must neither be cancelled by its client leaving nor count against
    its share, so the scope applies only in the task that set it."""

    __slots__ = ("client_key", "task", "watch")

    def __init__(self, watch: DisconnectWatch | None, client_key: str | None) -> None:
        self.watch = watch
        self.client_key = client_key
        self.task = asyncio.current_task()


def current() -> RequestScope | None:
    """The scope of the request this task serves, if it is that request's own task."""
    scope = CURRENT.get()
    if scope is None or scope.task is not asyncio.current_task():
        return None
    return scope


CURRENT: ContextVar[RequestScope | None] = ContextVar("madbase_request_scope", default=None)


def client_gone(watch: DisconnectWatch | None) -> bool:
    """Whether a CancelledError seen now came from the client going away (then the task is uncancelled, so the
    caller may finish its own clean-up and return normally)."""
    if watch is None or not watch.gone:
        return False
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()
    return True
