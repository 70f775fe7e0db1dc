"""Unit tests of the client-claims plugin, run natively:
``python -m unittest`` in this folder (after ``tessera plugin build`` or a copy
of the SDK has put ``tessera_plugin/`` here)."""

import unittest
from typing import Any, Optional

import plugin
from tessera_plugin import Changes
from tessera_plugin.testing import MockApi, mock_event

NS = "https://claims.example.com/"

CLIENT = {
    "id": "acme-sync",
    "name": "ACME order sync",
    "app_type": "machine",
    "metadata": {
        "partner": "acme",
        "tier": "gold",
        "limits": {"rps": 10, "regions": ["eu"]},
    },
}


def run(config: dict[str, Any], client: Optional[dict[str, Any]] = None) -> MockApi:
    """Runs the credentials-exchange stage; returns the api with its changes."""
    api = MockApi()
    event = mock_event(client=client or CLIENT, config=config)
    plugin.on_credentials_exchange(event, api)
    return api


def claim(changes: Changes, name: str) -> Any:
    """The access-token claim ``{NS}{name}``, or None."""
    return changes.access_token_claims.get(NS + name)


class ClientClaimsTest(unittest.TestCase):
    def test_sets_name_app_type_and_every_metadata_key_by_default(self) -> None:
        changes = run({"namespace": NS}).changes

        self.assertEqual(claim(changes, "client_name"), "ACME order sync")
        self.assertEqual(claim(changes, "client_app_type"), "machine")
        self.assertEqual(claim(changes, "partner"), "acme")
        self.assertEqual(claim(changes, "tier"), "gold")
        self.assertEqual(claim(changes, "limits"), {"rps": 10, "regions": ["eu"]})
        self.assertEqual(len(changes.access_token_claims), 5)
        self.assertEqual(changes.id_token_claims, {})
        self.assertEqual((changes.add_scopes, changes.remove_scopes), ([], []))

    def test_metadata_keys_as_a_json_list_selects_keys_and_skips_absent_ones(self) -> None:
        changes = run({"namespace": NS, "metadata_keys": ["tier", "region"]}).changes

        self.assertEqual(claim(changes, "tier"), "gold")
        self.assertIsNone(claim(changes, "partner"))
        self.assertIsNone(claim(changes, "region"))
        self.assertEqual(len(changes.access_token_claims), 3)

    def test_metadata_keys_as_a_comma_separated_string(self) -> None:
        changes = run({"namespace": NS, "metadata_keys": " partner , limits,,"}).changes

        self.assertEqual(claim(changes, "partner"), "acme")
        self.assertEqual(claim(changes, "limits")["rps"], 10)
        self.assertIsNone(claim(changes, "tier"))

    def test_an_empty_list_copies_no_metadata(self) -> None:
        changes = run({"namespace": NS, "metadata_keys": []}).changes

        self.assertEqual(len(changes.access_token_claims), 2)

    def test_logs_one_debug_line(self) -> None:
        logs = run({"namespace": NS}).logs

        self.assertEqual(len(logs), 1)
        level, message = logs[0]
        self.assertEqual(level, "debug")
        self.assertIn('"acme-sync"', message)
        self.assertIn("3 metadata claim(s) [limits, partner, tier]", message)

    def test_metadata_cannot_shadow_the_built_in_claims(self) -> None:
        sneaky = {"id": "c", "name": "Real name", "app_type": "spa", "metadata": {"client_name": "Fake"}}
        api = run({"namespace": NS}, client=sneaky)

        self.assertEqual(claim(api.changes, "client_name"), "Real name")
        self.assertEqual(claim(api.changes, "client_app_type"), "spa")
        self.assertTrue(any(level == "warn" for level, _ in api.logs))

    def test_authorize_sets_the_same_access_token_claims(self) -> None:
        api = MockApi()
        event = mock_event("authorize", client=CLIENT, user={"id": "user-1"}, config={"namespace": NS})
        plugin.on_authorize(event, api)

        self.assertEqual(api.changes, run({"namespace": NS}).changes)

    def test_a_missing_namespace_fails(self) -> None:
        with self.assertRaisesRegex(ValueError, 'client-claims: config key "namespace" is required'):
            run({})

    def test_an_empty_namespace_fails(self) -> None:
        with self.assertRaisesRegex(ValueError, 'client-claims: config key "namespace" is required'):
            run({"namespace": ""})

    def test_a_malformed_metadata_keys_fails(self) -> None:
        with self.assertRaisesRegex(ValueError, 'config key "metadata_keys" must be a list of strings'):
            run({"namespace": NS, "metadata_keys": ["tier", 3]})


if __name__ == "__main__":
    unittest.main()
