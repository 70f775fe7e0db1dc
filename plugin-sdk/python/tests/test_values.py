"""Value conversion between Python and the WIT ``value`` variant."""

import math
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tessera_plugin import from_wit_value, to_wit_value  # noqa: E402


class ToWitTest(unittest.TestCase):
    def test_scalars_map_to_their_own_cases(self) -> None:
        self.assertEqual(to_wit_value(None), ("null", None))
        self.assertEqual(to_wit_value(True), ("boolean", True))
        self.assertEqual(to_wit_value(-7), ("integer", -7))
        self.assertEqual(to_wit_value(1.5), ("number", 1.5))
        self.assertEqual(to_wit_value("x"), ("text", "x"))

    def test_booleans_are_not_integers(self) -> None:
        self.assertEqual(to_wit_value(False), ("boolean", False))

    def test_integers_beyond_s64_travel_as_numbers(self) -> None:
        self.assertEqual(to_wit_value(2**63 - 1), ("integer", 2**63 - 1))
        self.assertEqual(to_wit_value(-(2**63)), ("integer", -(2**63)))
        self.assertEqual(to_wit_value(2**63), ("number", float(2**63)))
        with self.assertRaisesRegex(ValueError, "too large"):
            to_wit_value(10**400)

    def test_string_lists_are_text_lists_and_other_lists_json(self) -> None:
        self.assertEqual(to_wit_value(["a", "b"]), ("text-list", ["a", "b"]))
        self.assertEqual(to_wit_value(("a",)), ("text-list", ["a"]))
        self.assertEqual(to_wit_value([]), ("text-list", []))
        self.assertEqual(to_wit_value(["a", 1]), ("json", '["a",1]'))
        self.assertEqual(to_wit_value({"k": [1, None]}), ("json", '{"k":[1,null]}'))
        self.assertEqual(to_wit_value({"é": "ü"}), ("json", '{"é":"ü"}'))

    def test_non_finite_numbers_are_refused_anywhere(self) -> None:
        for value in (math.nan, math.inf, -math.inf, {"a": [math.nan]}):
            with self.subTest(value=value), self.assertRaisesRegex(ValueError, "NaN"):
                to_wit_value(value)

    def test_values_json_cannot_encode_are_refused(self) -> None:
        with self.assertRaisesRegex(TypeError, "not a JSON value"):
            to_wit_value({"when": object()})
        with self.assertRaisesRegex(TypeError, "not a JSON value"):
            to_wit_value({1, 2})


class FromWitTest(unittest.TestCase):
    def test_each_case_decodes(self) -> None:
        self.assertIsNone(from_wit_value("null", None))
        self.assertIs(from_wit_value("boolean", True), True)
        self.assertEqual(from_wit_value("integer", 3), 3)
        self.assertEqual(from_wit_value("number", 0.25), 0.25)
        self.assertEqual(from_wit_value("text", "x"), "x")
        self.assertEqual(from_wit_value("text-list", ["a", "b"]), ["a", "b"])
        self.assertEqual(from_wit_value("json", '{"a":[1,"b"]}'), {"a": [1, "b"]})

    def test_bad_json_is_kept_as_text_and_nan_becomes_none(self) -> None:
        self.assertEqual(from_wit_value("json", "{not json"), "{not json")
        self.assertIsNone(from_wit_value("number", math.nan))

    def test_unknown_cases_are_errors(self) -> None:
        with self.assertRaisesRegex(ValueError, "unknown WIT value case 'blob'"):
            from_wit_value("blob", b"")


class RoundTripTest(unittest.TestCase):
    def test_json_values_round_trip(self) -> None:
        for value in (
            None,
            False,
            0,
            -(2**63),
            -0.25,
            "",
            "ünïcode",
            [],
            ["a"],
            [1, 2],
            [["nested"]],
            {},
            {"tier": "gold", "limits": {"rps": 10, "burst": 2.5}, "tags": ["x"]},
        ):
            with self.subTest(value=value):
                self.assertEqual(from_wit_value(*to_wit_value(value)), value)

    def test_tuples_come_back_as_lists(self) -> None:
        self.assertEqual(from_wit_value(*to_wit_value({"t": (1, "a")})), {"t": [1, "a"]})


if __name__ == "__main__":
    unittest.main()
