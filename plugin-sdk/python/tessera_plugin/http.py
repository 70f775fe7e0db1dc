"""Outgoing HTTP requests from a plugin, like :func:`urllib.request.urlopen`.

A plugin reaches only the origins its ``[[plugins]] egress`` lists, within
its deadline, reading back at most ``egress_max_bytes``; Tessera checks
every request, redirects included (``tessera:egress/http@0.1.0``)::

    from tessera_plugin.http import urlopen, HTTPError, URLError

    def on_credentials_exchange(event, api):
        try:
            with urlopen("https://crm.example.com/v1/accounts/" + event.client.id,
                         headers={"authorization": "Bearer " + event.secrets["CRM_TOKEN"]}) as response:
                account = response.json()
        except HTTPError as error:   # a 4xx or 5xx answer
            ...
        except URLError as error:    # refused, timed out, too large, unreachable
            ...

As in urllib: ``data`` (bytes or str, sent as UTF-8) makes a POST unless
``method`` says otherwise; redirects are followed (at most 5), a 303, or a
301/302 after a POST, continuing as a GET without a body; a 4xx or 5xx
answer raises :class:`HTTPError` (which is also the response); a failure
raises :class:`URLError` whose ``reason`` says why and whose ``kind`` is the
host's (``denied``, ``timeout``, ``too-large``, ``invalid``, ``failed``).

Outside a component (in native tests) there is no host: set
:data:`transport` to a function taking and returning the WIT records' fields
as dictionaries (see :func:`_host_send`).
"""

from __future__ import annotations

import json as _json
from typing import Any, Callable, Iterable, Mapping, Optional, Union
from urllib.parse import urljoin

__all__ = ["HTTPError", "Response", "URLError", "transport", "urlopen"]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5

#: Sends one request: ``{"method", "url", "headers", "body", "timeout_ms"}``
#: in, ``{"status", "headers", "body"}`` out, or :class:`URLError` raised.
#: ``None``: the component's host (``tessera:egress/http``).
transport: Optional[Callable[[dict[str, Any]], dict[str, Any]]] = None


class URLError(OSError):
    """No response: the request was refused, timed out, was too large, or
    failed on the network."""

    def __init__(self, reason: str, kind: str = "failed") -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind

    def __str__(self) -> str:
        return f"<urlopen error {self.kind}: {self.reason}>"


class Response:
    """A response, read whole by the host."""

    def __init__(self, url: str, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.url = url
        self.status = status
        self.headers = _Headers(headers)
        self._body = body

    def read(self) -> bytes:
        """The body."""
        return self._body

    def text(self, encoding: str = "utf-8") -> str:
        """The body decoded (invalid bytes replaced)."""
        return self._body.decode(encoding, errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return _json.loads(self._body)

    def geturl(self) -> str:
        """The URL the response came from, after redirects."""
        return self.url

    def getcode(self) -> int:
        """The status code."""
        return self.status

    def __enter__(self) -> "Response":
        return self

    def __exit__(self, *_: object) -> None:
        return None


class HTTPError(URLError, Response):
    """A 4xx or 5xx answer; also the response."""

    def __init__(self, response: Response) -> None:
        Response.__init__(self, response.url, response.status, list(response.headers.items()), response.read())
        URLError.__init__(self, f"HTTP {response.status}", "status")
        self.code = response.status

    def __str__(self) -> str:
        return f"HTTP Error {self.code}: {self.url}"


class _Headers:
    """Response headers: names are case-insensitive; repeated values join with ", "."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self._pairs = [(name.lower(), value) for name, value in pairs]

    def get(self, name: str, default: Optional[str] = None) -> Optional[str]:
        values = [v for n, v in self._pairs if n == name.lower()]
        return ", ".join(values) if values else default

    def __getitem__(self, name: str) -> Optional[str]:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def items(self) -> list[tuple[str, str]]:
        return list(self._pairs)


def _host_send(request: dict[str, Any]) -> dict[str, Any]:
    """Sends ``request`` through the component's ``tessera:egress/http``."""
    try:
        from componentize_py_types import Err
        from wit_world.imports import http as egress
    except ImportError:
        raise URLError(
            "no host: tessera_plugin.http works inside a component; in tests, set tessera_plugin.http.transport",
            "invalid",
        ) from None
    try:
        answer = egress.send(
            egress.Request(
                method=request["method"],
                url=request["url"],
                headers=request["headers"],
                body=request["body"],
                timeout_ms=request["timeout_ms"],
            )
        )
    except Err as error:
        case = error.value
        kind = {
            "Error_Denied": "denied",
            "Error_Timeout": "timeout",
            "Error_TooLarge": "too-large",
            "Error_Invalid": "invalid",
            "Error_Failed": "failed",
        }.get(type(case).__name__, "failed")
        reason = (
            f"the response is larger than {case.value} bytes (egress_max_bytes)"
            if kind == "too-large"
            else str(case.value)
        )
        raise URLError(reason, kind) from None
    return {"status": answer.status, "headers": list(answer.headers), "body": bytes(answer.body)}


def urlopen(
    url: str,
    data: Union[bytes, str, None] = None,
    timeout: Optional[float] = None,
    *,
    headers: Optional[Mapping[str, str]] = None,
    method: Optional[str] = None,
) -> Response:
    """Sends a request and returns the response (see the module's text).

    ``timeout`` is in seconds; the default, and the most, is what is left of
    the plugin's deadline.
    """
    send = transport or _host_send
    body = data.encode() if isinstance(data, str) else data
    verb = (method or ("POST" if body is not None else "GET")).upper()
    pairs = [(str(k).lower(), str(v)) for k, v in (headers or {}).items()]
    timeout_ms = None if timeout is None else max(1, int(timeout * 1000))
    for hop in range(_MAX_REDIRECTS + 1):
        answer = send({"method": verb, "url": url, "headers": pairs, "body": body, "timeout_ms": timeout_ms})
        response = Response(url, answer["status"], answer["headers"], answer["body"])
        location = response.headers.get("location")
        if response.status in _REDIRECTS and location is not None:
            if hop == _MAX_REDIRECTS:
                raise URLError(f"more than {_MAX_REDIRECTS} redirects from {url}", "failed")
            url = urljoin(url, location)
            if response.status == 303 or (verb == "POST" and response.status in (301, 302)):
                verb, body = "GET", None
                pairs = [(k, v) for k, v in pairs if k != "content-type"]
            continue
        if response.status >= 400:
            raise HTTPError(response)
        return response
    raise URLError(f"more than {_MAX_REDIRECTS} redirects", "failed")  # not reached
