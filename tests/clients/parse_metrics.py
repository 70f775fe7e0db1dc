"""Parses a metrics exposition from standard input with the parsers of the
Python prometheus_client package, strictly: `text` (the Prometheus text
format 0.0.4) or `openmetrics` (OpenMetrics 1.0, which also checks the
`# EOF` line, counter and histogram sample names and bucket order).

Prints the families as JSON, {name: {"type": ..., "samples": [{"name",
"labels", "value"}]}}, and exits non-zero when the text does not parse.
"""

import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics
from prometheus_client.parser import text_string_to_metric_families as text


def main() -> None:
    parse = {"text": text, "openmetrics": openmetrics}[sys.argv[1]]
    families = {}
    for family in parse(sys.stdin.read()):
        families[family.name] = {
            "type": family.type,
            "samples": [
                {"name": s.name, "labels": s.labels, "value": s.value}
                for s in family.samples
            ],
        }
    json.dump(families, sys.stdout)


if __name__ == "__main__":
    main()
