"""The ``api`` a stage function receives: claims, scopes, denials, logs."""

import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tessera_plugin import DENY_CODES, Denial, run_stage  # noqa: E402
from tessera_plugin.testing import MockApi, mock_event  # noqa: E402


class ClaimsTest(unittest.TestCase):
    def test_claims_keep_the_position_of_their_first_edit_and_the_last_value(self) -> None:
        api = MockApi()
        api.access_token.set_custom_claim("a", 1)
        api.access_token.set_custom_claim("b", {"x": (1, 2)})
        api.access_token.set_custom_claim("a", "two")
        self.assertEqual(list(api.changes.access_token_claims.items()), [("a", "two"), ("b", {"x": [1, 2]})])

    def test_none_and_remove_custom_claim_remove(self) -> None:
        api = MockApi()
        api.access_token.set_custom_claim("a", None)
        api.id_token.remove_custom_claim("b")
        self.assertEqual(api.changes.access_token_claims, {"a": None})
        self.assertEqual(api.changes.id_token_claims, {"b": None})

    def test_id_token_claims_are_separate(self) -> None:
        api = MockApi()
        api.id_token.set_custom_claim("plan", "pro")
        self.assertEqual(api.changes.id_token_claims, {"plan": "pro"})
        self.assertEqual(api.changes.access_token_claims, {})

    def test_bad_claims_fail_at_the_call_naming_the_claim(self) -> None:
        api = MockApi()
        with self.assertRaisesRegex(ValueError, "claim 'n': nan"):
            api.access_token.set_custom_claim("n", float("nan"))
        with self.assertRaisesRegex(TypeError, "claim 'o': .* not a JSON value"):
            api.id_token.set_custom_claim("o", object())
        with self.assertRaisesRegex(TypeError, "a claim name must be a str, not int"):
            api.access_token.set_custom_claim(1, "x")
        self.assertEqual(api.changes.access_token_claims, {})


class ScopesTest(unittest.TestCase):
    def test_the_last_of_add_and_remove_wins_without_duplicates(self) -> None:
        api = MockApi()
        api.access_token.add_scope("b")
        api.access_token.add_scope("a")
        api.access_token.add_scope("b")
        api.access_token.add_scope("w")
        api.access_token.remove_scope("w")
        self.assertEqual(api.changes.add_scopes, ["b", "a"])
        self.assertEqual(api.changes.remove_scopes, ["w"])
        api.access_token.add_scope("w")
        self.assertEqual(api.changes.add_scopes, ["b", "a", "w"])
        self.assertEqual(api.changes.remove_scopes, [])

    def test_scopes_must_be_strings(self) -> None:
        with self.assertRaisesRegex(TypeError, "a scope must be a str"):
            MockApi().access_token.remove_scope(["read"])


class DenyTest(unittest.TestCase):
    def test_a_description_alone_is_access_denied(self) -> None:
        api = MockApi()
        api.access.deny("outside office hours")
        self.assertEqual(api.denial, Denial("access_denied", "outside office hours"))

    def test_every_code_with_underscores_or_dashes(self) -> None:
        for code in DENY_CODES:
            for spelling in (code, code.replace("_", "-")):
                with self.subTest(spelling=spelling):
                    api = MockApi()
                    api.access.deny(spelling, "why")
                    self.assertEqual(api.denial, Denial(code, "why"))

    def test_unknown_codes_are_errors_listing_the_codes(self) -> None:
        with self.assertRaisesRegex(ValueError, "unknown deny code 'server_error'; expected one of access_denied, "):
            MockApi().access.deny("server_error", "boom")
        with self.assertRaisesRegex(TypeError, "a denial description must be a str"):
            MockApi().access.deny("invalid_scope", 3)

    def test_the_first_denial_counts(self) -> None:
        api = MockApi()
        api.access.deny("invalid_scope", "first")
        api.access.deny("second")
        self.assertEqual(api.denial, Denial("invalid_scope", "first"))


class LogTest(unittest.TestCase):
    def test_levels_and_parts_joined_by_spaces(self) -> None:
        api = MockApi()
        api.log.trace("t")
        api.log.debug("d", 1)
        api.log.info("i", None, [2])
        api.log.warn("w")
        api.log.warning("w2")
        api.log.error("e")
        self.assertEqual(
            api.logs,
            [("trace", "t"), ("debug", "d 1"), ("info", "i None [2]"), ("warn", "w"), ("warn", "w2"), ("error", "e")],
        )

    def test_unknown_levels_are_errors(self) -> None:
        with self.assertRaisesRegex(ValueError, "unknown log level 'fatal'"):
            MockApi().log.log("fatal", "x")


class RunStageTest(unittest.TestCase):
    def test_calls_the_function_with_event_and_api(self) -> None:
        api = MockApi()
        run_stage(lambda event, api: api.log.info(event.client.id), mock_event(), api)
        self.assertEqual(api.logs, [("info", "test-client")])

    def test_async_functions_are_refused(self) -> None:
        async def on_authorize(event, api):
            api.access.deny("never runs")

        api = MockApi()
        with self.assertRaisesRegex(TypeError, "on_authorize is async; .* plain functions"):
            run_stage(on_authorize, mock_event("authorize"), api)
        self.assertIsNone(api.denial)


if __name__ == "__main__":
    unittest.main()
