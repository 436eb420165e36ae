"""The running app of each service, by runtime and service name: how a service's admin routes
(`Service.admin_routes`, served by the admin service) reach the state of their own service's app — realtime's
hubs, storage's backends, auth's mail sender.

The gateway registers every app it builds (`register`). Weak references on both sides: a registry entry
never keeps a runtime or an app alive (tests build and drop many). A service's admin handler asks with its
own service name only (`app_of(runtime, "realtime")`): the registry is no back door between services.
"""

from __future__ import annotations

import weakref
from typing import Any

_APPS: weakref.WeakKeyDictionary[Any, dict[str, weakref.ReferenceType[Any]]] = weakref.WeakKeyDictionary()


def register(runtime: Any, name: str, app: Any) -> None:
    """Remember `app` as the running app of service `name` on `runtime` (apps that cannot be weakly
    referenced, e.g. plain functions of closures, are skipped: nobody asks for those)."""
    try:
        ref = weakref.ref(app)
    except TypeError:
        return
    _APPS.setdefault(runtime, {})[name] = ref


def app_of(runtime: Any, name: str) -> Any | None:
    """The running app of service `name` on `runtime`, or None (not built, or gone)."""
    ref = _APPS.get(runtime, {}).get(name)
    return ref() if ref is not None else None
