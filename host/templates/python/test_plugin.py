"""Unit tests, run natively with ``python3 -m unittest`` (no WebAssembly needed)."""

import unittest

import plugin
from tessera_plugin.testing import MockApi, mock_event


class PluginTest(unittest.TestCase):
    def test_puts_the_client_name_and_tier_into_the_access_token(self) -> None:
        event = mock_event(
            client={"id": "acme-sync", "name": "ACME order sync", "metadata": {"tier": "gold"}},
            config={"namespace": "https://claims.example.com/"},
        )
        api = MockApi()

        plugin.on_credentials_exchange(event, api)

        claims = api.changes.access_token_claims
        self.assertIsNone(api.denial)
        self.assertEqual(claims["https://claims.example.com/client_name"], "ACME order sync")
        self.assertEqual(claims["https://claims.example.com/tier"], "gold")


if __name__ == "__main__":
    unittest.main()
