"""api.cache over the in-memory store: what a later request finds, the
host's limits, expiry."""

from __future__ import annotations

import unittest

from tessera_plugin import CacheEntry, MemoryCacheStore
from tessera_plugin.testing import MockApi


class CacheTest(unittest.TestCase):
    def test_a_later_request_reads_what_an_earlier_one_set(self) -> None:
        now = [1_000_000]
        store = MemoryCacheStore(now=lambda: now[0])
        first = MockApi(cache=store)
        self.assertIsNone(first.cache.get("k"))
        self.assertEqual(first.cache.set("k", "v", ttl=60), 1_060_000)
        second = MockApi(cache=store)
        self.assertEqual(second.cache.get("k"), CacheEntry("v", 1_060_000))
        now[0] += 60_000
        self.assertIsNone(second.cache.get("k"), "expired")

    def test_limits_and_types_are_checked(self) -> None:
        api = MockApi()
        with self.assertRaisesRegex(ValueError, "at most 4096"):
            api.cache.set("k", "x" * 5000)
        with self.assertRaisesRegex(TypeError, "api.cache.set: the value must be a str, not dict"):
            api.cache.set("k", {"a": 1})  # type: ignore[arg-type]
        with self.assertRaisesRegex(ValueError, "1 ms or more"):
            api.cache.set("k", "v", ttl=0)
        api.cache.set("k", "v")
        self.assertTrue(api.cache.delete("k"))
        self.assertFalse(api.cache.delete("k"))


if __name__ == "__main__":
    unittest.main()
