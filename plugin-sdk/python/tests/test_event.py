"""Events: the test factory, and the config and secrets mappings."""

import dataclasses
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tessera_plugin import Config, Secrets  # noqa: E402
from tessera_plugin.testing import mock_event  # noqa: E402


class MockEventTest(unittest.TestCase):
    def test_credentials_exchange_defaults(self) -> None:
        event = mock_event()
        self.assertEqual(event.stage, "credentials-exchange")
        self.assertEqual(event.client.app_type, "machine")
        self.assertEqual(event.api.identifier, "https://api.example.com")
        self.assertEqual(event.transaction.grant_type, "client_credentials")
        self.assertEqual(event.transaction.requested_audience, "https://api.example.com")
        self.assertIsNone(event.user)
        self.assertIsNone(event.id_token)

    def test_authorize_defaults_have_a_user_and_no_api(self) -> None:
        event = mock_event("authorize", user={"email": "ada@example.com", "email_verified": True})
        self.assertEqual(event.user.id, "user-1")
        self.assertTrue(event.user.email_verified)
        self.assertIsNone(event.api)
        self.assertEqual(event.id_token.claims, {})
        self.assertEqual(event.transaction.grant_type, "authorization_code")

    def test_given_fields_replace_defaults_and_values_go_through_wit(self) -> None:
        event = mock_event(
            "authorize",
            client={"metadata": {"regions": ("eu", "us"), "limits": {"rps": 10}}},
            api={"identifier": "https://orders.example.com", "scopes": ["read:orders"]},
            request={"params": {"scope": "openid"}},
            access_token={"scopes": ["openid"], "claims": {"x": 1}},
        )
        self.assertEqual(event.client.metadata, {"regions": ["eu", "us"], "limits": {"rps": 10}})
        self.assertEqual(event.api.scopes, ["read:orders"])
        self.assertEqual(event.transaction.requested_audience, "https://orders.example.com")
        self.assertEqual(event.request.params, {"scope": "openid"})
        self.assertEqual(event.access_token.claims, {"x": 1})

    def test_events_are_read_only(self) -> None:
        event = mock_event()
        with self.assertRaises(dataclasses.FrozenInstanceError):
            event.client.name = "other"

    def test_mistakes_are_reported(self) -> None:
        with self.assertRaisesRegex(TypeError, "unknown client key\\(s\\) appType; expected id, name"):
            mock_event(client={"appType": "spa"})
        with self.assertRaisesRegex(ValueError, "unknown app_type 'web'"):
            mock_event(client={"app_type": "web"})
        with self.assertRaisesRegex(ValueError, "unknown stage 'token'"):
            mock_event("token")
        with self.assertRaisesRegex(TypeError, "only part of the authorize stage"):
            mock_event(user={"id": "u"})
        with self.assertRaisesRegex(ValueError, "NaN"):
            mock_event(client={"metadata": {"n": float("nan")}})


class ConfigTest(unittest.TestCase):
    def test_values_are_strings_as_the_host_passes_them(self) -> None:
        config = mock_event(
            config={"s": "text", "n": 1.5, "b": True, "l": ["a", "b"], "t": {"k": [1]}}
        ).config
        self.assertEqual(config["s"], "text")
        self.assertEqual(config["n"], "1.5")
        self.assertEqual(config["b"], "true")
        self.assertEqual(config["l"], '["a","b"]')
        self.assertEqual(config["t"], '{"k":[1]}')

    def test_json_parses_and_falls_back_to_the_string(self) -> None:
        config = mock_event(config={"list": ["a"], "csv": "partner, tier", "looks_like_json": "42"}).config
        self.assertEqual(config.json("list"), ["a"])
        self.assertEqual(config.json("csv"), "partner, tier")
        self.assertEqual(config.json("looks_like_json"), 42)
        self.assertIsNone(config.json("missing"))
        self.assertEqual(config.json("missing", []), [])

    def test_missing_keys(self) -> None:
        config = Config({"a": "1"}.get)
        self.assertIn("a", config)
        self.assertNotIn("b", config)
        self.assertIsNone(config.get("b"))
        self.assertEqual(config.get("b", "x"), "x")
        with self.assertRaisesRegex(KeyError, "no config key 'b'"):
            config["b"]

    def test_lookups_are_lazy(self) -> None:
        asked = []
        config = Config(lambda key: asked.append(key))
        self.assertEqual(asked, [])
        config.get("namespace")
        self.assertEqual(asked, ["namespace"])


class SecretsTest(unittest.TestCase):
    def test_get_index_and_contains(self) -> None:
        secrets = mock_event(secrets={"token": "hunter2"}).secrets
        self.assertEqual(secrets["token"], "hunter2")
        self.assertEqual(secrets.get("token"), "hunter2")
        self.assertIsNone(secrets.get("other"))
        self.assertIn("token", secrets)
        with self.assertRaisesRegex(KeyError, "no secret 'other'"):
            secrets["other"]

    def test_repr_hides_values(self) -> None:
        secrets = Secrets({"token": "hunter2"}.get)
        self.assertNotIn("hunter2", repr(secrets))
        self.assertNotIn("hunter2", repr(mock_event(secrets={"token": "hunter2"})))


if __name__ == "__main__":
    unittest.main()
