"""tessera_plugin.http over a fake transport: what urlopen sends, how it
follows redirects, and what it raises."""

from __future__ import annotations

import unittest
from typing import Any

from tessera_plugin import http


class FakeHost:
    """Answers from ``routes`` (URL → answer or URLError) and records requests."""

    def __init__(self, routes: dict[str, Any]) -> None:
        self.routes = routes
        self.sent: list[dict[str, Any]] = []

    def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        self.sent.append(request)
        route = self.routes.get(request["url"])
        if route is None:
            raise http.URLError(f"{request['url']} is not allowed", "denied")
        if isinstance(route, http.URLError):
            raise route
        return {"status": route.get("status", 200), "headers": route.get("headers", []), "body": route.get("body", b"")}


class UrlopenTest(unittest.TestCase):
    def use(self, routes: dict[str, Any]) -> FakeHost:
        host = FakeHost(routes)
        http.transport = host
        self.addCleanup(setattr, http, "transport", None)
        return host

    def test_a_get_reads_status_headers_and_json(self) -> None:
        host = self.use({"https://crm.example.com/a": {"headers": [("Content-Type", "application/json"), ("set-cookie", "a"), ("set-cookie", "b")], "body": b'{"n": "In\\u00eas"}'}})
        with http.urlopen("https://crm.example.com/a", headers={"Authorization": "Bearer t"}) as response:
            self.assertEqual(response.status, 200)
            self.assertEqual(response.headers["content-type"], "application/json")
            self.assertEqual(response.headers.get("Set-Cookie"), "a, b")
            self.assertEqual(response.json(), {"n": "Inês"})
        self.assertEqual(host.sent[0]["method"], "GET")
        self.assertEqual(host.sent[0]["headers"], [("authorization", "Bearer t")])
        self.assertIsNone(host.sent[0]["body"])

    def test_data_makes_a_post_and_a_timeout_is_in_milliseconds(self) -> None:
        host = self.use({"https://crm.example.com/e": {"status": 201}})
        self.assertEqual(http.urlopen("https://crm.example.com/e", "Zoë", timeout=0.25).status, 201)
        self.assertEqual((host.sent[0]["method"], host.sent[0]["body"], host.sent[0]["timeout_ms"]), ("POST", "Zoë".encode(), 250))

    def test_redirects_are_followed_and_a_hop_off_the_list_raises(self) -> None:
        host = self.use(
            {
                "https://a.example/start": {"status": 302, "headers": [("location", "/next")]},
                "https://a.example/next": {"body": b"done"},
                "https://a.example/away": {"status": 301, "headers": [("location", "https://evil.example/")]},
                "https://a.example/loop": {"status": 302, "headers": [("location", "/loop")]},
                "https://a.example/form": {"status": 303, "headers": [("location", "/next")]},
            }
        )
        response = http.urlopen("https://a.example/start")
        self.assertEqual((response.read(), response.geturl()), (b"done", "https://a.example/next"))
        with self.assertRaises(http.URLError) as caught:
            http.urlopen("https://a.example/away")
        self.assertEqual(caught.exception.kind, "denied")
        with self.assertRaisesRegex(http.URLError, "more than 5 redirects"):
            http.urlopen("https://a.example/loop")
        http.urlopen("https://a.example/form", b"x=1", headers={"content-type": "text/plain"})
        self.assertEqual((host.sent[-1]["method"], host.sent[-1]["body"], host.sent[-1]["headers"]), ("GET", None, []))

    def test_an_error_status_raises_an_http_error_that_is_the_response(self) -> None:
        self.use({"https://a.example/missing": {"status": 404, "body": b"no such user"}})
        with self.assertRaises(http.HTTPError) as caught:
            http.urlopen("https://a.example/missing")
        self.assertEqual((caught.exception.code, caught.exception.read()), (404, b"no such user"))
        self.assertEqual(str(caught.exception), "HTTP Error 404: https://a.example/missing")

    def test_without_a_host_or_transport_the_error_says_what_to_do(self) -> None:
        with self.assertRaisesRegex(http.URLError, "works inside a component; in tests, set tessera_plugin.http.transport"):
            http.urlopen("https://a.example/")


if __name__ == "__main__":
    unittest.main()
