"""Test a plugin natively: events and an ``api`` that records, no WebAssembly.

::

    import unittest
    import plugin
    from tessera_plugin.testing import MockApi, mock_event

    class TierTest(unittest.TestCase):
        def test_sets_the_tier(self):
            event = mock_event(client={"metadata": {"tier": "gold"}},
                               config={"claim": "https://claims.example.com/tier"})
            api = MockApi()
            plugin.on_credentials_exchange(event, api)
            self.assertEqual(
                api.changes.access_token_claims["https://claims.example.com/tier"], "gold")

Values given to :func:`mock_event` go through the same WIT encoding as the
host's (tuples become lists, for instance), and ``config`` values that are not
strings are passed as JSON text, as the host does with TOML values.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from . import (
    APP_TYPES,
    STAGES,
    Api,
    CacheStore,
    ApiInfo,
    Client,
    Config,
    Event,
    Request,
    Secrets,
    TokenState,
    Transaction,
    User,
    from_wit_value,
    to_wit_value,
)

__all__ = ["MockApi", "mock_event"]


class MockApi(Api):
    """An :class:`~tessera_plugin.Api` that records log lines in ``logs``
    as ``(level, message)`` pairs. Read the outcome from ``changes`` and
    ``denial``. ``api.cache`` is backed by ``cache``, by default a new
    :class:`~tessera_plugin.MemoryCacheStore`: pass one to several
    ``MockApi`` to test what a later request finds."""

    def __init__(self, cache: Optional[CacheStore] = None) -> None:
        self.logs: list[tuple[str, str]] = []
        super().__init__(lambda level, message: self.logs.append((level, message)), cache)


def _fields(what: str, given: Optional[dict[str, Any]], defaults: dict[str, Any]) -> dict[str, Any]:
    given = dict(given or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise TypeError(
            f"mock_event: unknown {what} key(s) {', '.join(unknown)}; "
            f"expected {', '.join(defaults)}"
        )
    return {**defaults, **given}


def _json_values(values: dict[str, Any]) -> dict[str, Any]:
    return {name: from_wit_value(*to_wit_value(value)) for name, value in values.items()}


def _config_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _token(given: Optional[dict[str, Any]], what: str) -> TokenState:
    fields = _fields(what, given, {"claims": {}, "scopes": []})
    return TokenState(claims=_json_values(fields["claims"]), scopes=list(fields["scopes"]))


def mock_event(
    stage: str = "credentials-exchange",
    *,
    client: Optional[dict[str, Any]] = None,
    api: Optional[dict[str, Any]] = None,
    user: Optional[dict[str, Any]] = None,
    request: Optional[dict[str, Any]] = None,
    transaction: Optional[dict[str, Any]] = None,
    access_token: Optional[dict[str, Any]] = None,
    id_token: Optional[dict[str, Any]] = None,
    config: Optional[dict[str, Any]] = None,
    secrets: Optional[dict[str, str]] = None,
) -> Event:
    """An event for ``stage`` (``"credentials-exchange"`` or ``"authorize"``).

    Each part is a dict of the fields to set; the rest get test defaults:
    a client ``test-client`` (``machine`` for credentials-exchange,
    ``regular_web`` for authorize), an API ``https://api.example.com``
    (credentials-exchange only: in authorize ``api`` stays ``None`` unless
    given), a user ``user-1`` (authorize only), the stage's grant type and
    the API as requested audience. Unknown keys raise ``TypeError``.

    ``config`` and ``secrets`` back ``event.config`` and ``event.secrets``.
    """
    if stage not in STAGES:
        raise ValueError(f"mock_event: unknown stage {stage!r}; expected " + " or ".join(STAGES))
    authorize = stage == "authorize"
    if not authorize and (user is not None or id_token is not None):
        raise TypeError("mock_event: user and id_token are only part of the authorize stage")

    client_fields = _fields(
        "client",
        client,
        {
            "id": "test-client",
            "name": "Test client",
            "app_type": "regular_web" if authorize else "machine",
            "metadata": {},
        },
    )
    if client_fields["app_type"] not in APP_TYPES:
        raise ValueError(
            f"mock_event: unknown app_type {client_fields['app_type']!r}; expected "
            + ", ".join(APP_TYPES)
        )
    client_fields["metadata"] = _json_values(client_fields["metadata"])

    api_info = None
    if api is not None or not authorize:
        api_fields = _fields(
            "api",
            api,
            {"identifier": "https://api.example.com", "name": "Example API", "scopes": [], "metadata": {}},
        )
        api_fields["metadata"] = _json_values(api_fields["metadata"])
        api_info = ApiInfo(**api_fields)

    user_info = None
    if authorize:
        user_fields = _fields(
            "user",
            user,
            {
                "id": "user-1",
                "email": None,
                "email_verified": False,
                "name": None,
                "app_metadata": {},
                "user_metadata": {},
            },
        )
        user_fields["app_metadata"] = _json_values(user_fields["app_metadata"])
        user_fields["user_metadata"] = _json_values(user_fields["user_metadata"])
        user_info = User(**user_fields)

    transaction_fields = _fields(
        "transaction",
        transaction,
        {
            "id": "test-transaction",
            "grant_type": "authorization_code" if authorize else "client_credentials",
            "requested_scopes": [],
            "granted_scopes": [],
            "redirect_uri": None,
            "requested_audience": api_info.identifier if api_info else None,
        },
    )
    request_fields = _fields(
        "request",
        request,
        {
            "ip": "127.0.0.1",
            "user_agent": None,
            "hostname": "localhost",
            "method": "GET" if authorize else "POST",
            "params": {},
        },
    )

    config_text = {key: _config_text(value) for key, value in (config or {}).items()}
    secret_values = dict(secrets or {})
    return Event(
        stage=stage,
        client=Client(**client_fields),
        api=api_info,
        user=user_info,
        request=Request(**request_fields),
        transaction=Transaction(**transaction_fields),
        access_token=_token(access_token, "access_token"),
        id_token=_token(id_token, "id_token") if authorize else None,
        config=Config(config_text.get),
        secrets=Secrets(secret_values.get),
    )
