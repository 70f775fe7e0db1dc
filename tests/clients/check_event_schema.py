"""Validates a plugin event (JSON on standard input) against a JSON Schema
(the path in argv[1], draft 2020-12) with the `jsonschema` package; prints
each violation and exits 1 when there is any.

Used by tests/integration/abi.rs on what `event.to-json` gave a real
plugin, against plugin-sdk/event.schema.json (generated from the WIT by
`cargo xtask gen`).
"""

import json
import sys

from jsonschema import Draft202012Validator


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as f:
        schema = json.load(f)
    Draft202012Validator.check_schema(schema)
    event = json.load(sys.stdin)
    errors = sorted(Draft202012Validator(schema).iter_errors(event), key=lambda e: list(e.path))
    for error in errors:
        where = "/".join(str(p) for p in error.path) or "(the event)"
        print(f"{where}: {error.message}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
