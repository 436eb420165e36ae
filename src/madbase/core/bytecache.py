"""A cache bounded by the bytes of its entries, not by their count.

Caches keyed by what clients send (JWTs, their claims) must not grow with the size of what is sent: a token
can carry megabytes of user metadata, so "20,000 entries" may mean gigabytes. Each entry is charged an
estimate of the memory it holds; the oldest entries go first when the budget is exceeded (insertion order,
which for tokens is close to least recently used: a token is used for its lifetime, then replaced), and an
entry too large for its share of the budget is not cached at all (it is recomputed on every use instead).
"""

from __future__ import annotations

from typing import Generic, TypeVar

V = TypeVar("V")

# What an entry costs besides its payload: the dict slot, the key object, the value's container.
ENTRY_OVERHEAD = 200


class ByteBoundedCache(Generic[V]):
    def __init__(self, max_bytes: int, *, max_entry_fraction: int = 64) -> None:
        self.max_bytes = max_bytes
        self.max_entry_bytes = max(1, max_bytes // max_entry_fraction)
        self._data: dict[str, tuple[V, int]] = {}
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: str) -> V | None:
        hit = self._data.get(key)
        return None if hit is None else hit[0]

    def put(self, key: str, value: V, cost: int) -> None:
        """Store `value` charged `cost` bytes (plus the key and an overhead); too large entries are skipped."""
        cost += len(key) + ENTRY_OVERHEAD
        if cost > self.max_entry_bytes:
            return
        old = self._data.pop(key, None)
        if old is not None:
            self.bytes -= old[1]
        while self._data and self.bytes + cost > self.max_bytes:
            _, (_, freed) = self._pop_oldest()
            self.bytes -= freed
        self._data[key] = (value, cost)
        self.bytes += cost

    def _pop_oldest(self) -> tuple[str, tuple[V, int]]:
        oldest = next(iter(self._data))
        return oldest, self._data.pop(oldest)

    def clear(self) -> None:
        self._data.clear()
        self.bytes = 0
