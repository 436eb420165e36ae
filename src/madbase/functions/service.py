"""The functions service's gateway descriptor: functions verify JWTs themselves and answer their own preflights."""

from __future__ import annotations

from madbase.core.service import Service, not_implemented


def is_open(method: str, path: str) -> bool:
    return True


service = Service(name="functions", prefix="/functions/v1", build=not_implemented("Edge Functions"),
                  is_open=is_open, handles_preflight=False)
