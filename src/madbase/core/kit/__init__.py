"""The request kit every HTTP service is built on (see docs/architecture.md, "How a request flows").

- `routing`: the route table, guards declared on each route (roles, rate limit, body limit, operation name);
- `request`: the typed request with its bounded, streaming body reader;
- `response`: the one response type (bytes or an async iterator of chunks);
- `txrunner`: role + claims + settings as data, run in one transaction, errors mapped by the service's table;
- `timing`: named stages → Server-Timing and the stage histogram;
- `app`: the dispatcher gluing these to ASGI.
"""

from madbase.core.kit.app import Dispatcher, ServiceKit, check_guards
from madbase.core.kit.request import BodyErrors, Request
from madbase.core.kit.response import Response
from madbase.core.kit.routing import Match, RateRule, Route, RouteTable, route
from madbase.core.kit.timing import Stages
from madbase.core.kit.txrunner import CONNECTION_ERRORS, ErrorTable, TxRunner, TxSettings, acting_as, switch_role

__all__ = ["CONNECTION_ERRORS", "BodyErrors", "Dispatcher", "ErrorTable", "Match", "RateRule", "Request", "Response",
           "Route", "RouteTable", "ServiceKit", "Stages", "TxRunner", "TxSettings", "acting_as", "check_guards",
           "route", "switch_role"]
