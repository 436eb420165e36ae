"""ByteBoundedCache: bounded by the bytes charged, oldest out first, oversized entries never kept."""

from __future__ import annotations

from madbase.core.bytecache import ENTRY_OVERHEAD, ByteBoundedCache


def test_budget_eviction_and_oversized_entries() -> None:
    cache: ByteBoundedCache[int] = ByteBoundedCache(10_000, max_entry_fraction=4)
    for i in range(100):
        cache.put(f"k{i}", i, 1000)
        assert cache.bytes <= 10_000
    assert cache.get("k0") is None and cache.get("k99") == 99
    assert len(cache) == 10_000 // (1000 + 3 + ENTRY_OVERHEAD)
    cache.put("huge", -1, 5000)  # over a quarter of the budget: not cached
    assert cache.get("huge") is None
    cache.put("k99", 7, 10)  # replacing an entry re-charges it
    assert cache.get("k99") == 7 and cache.bytes <= 10_000
    cache.clear()
    assert cache.bytes == 0 and len(cache) == 0
