"""client-claims (Python): puts the calling application into its access token.

A port of the Rust ``plugins/client-claims``. An API exposed to third
parties wants to know, from the token alone, which application is calling.
This plugin sets namespaced claims on the access token:

- ``{namespace}client_name``: the client's display name;
- ``{namespace}client_app_type``: ``spa``, ``regular_web``, ``native`` or
  ``machine``;
- ``{namespace}{key}``: for each selected key of the client's metadata that
  the client has, its value (any JSON).

It runs at both stages, ``credentials-exchange`` (machine clients) and
``authorize`` (user flows), with the same claims.

Configuration:

- ``namespace`` (required): the prefix of every claim name, used as is, e.g.
  ``"https://claims.example.com/"``. A missing or empty namespace is a
  configuration error: the plugin fails with
  ``client-claims: config key "namespace" is required``, and the host fails
  the request per the plugin's ``on_error``.
- ``metadata_keys`` (optional): which client metadata keys to copy, as a list
  (``["partner", "tier"]``) or a comma-separated string (``"partner, tier"``).
  Default: every key. An empty list copies none. Anything else fails.

The built-in claims win over metadata keys of the same name (``client_name``,
``client_app_type``); such keys are skipped with a warning.
"""

from __future__ import annotations

import json
from typing import Optional

from tessera_plugin import Api, Client, Config, Event

#: Claim names (after the namespace) that the plugin sets itself.
BUILT_IN = ("client_name", "client_app_type")


def on_credentials_exchange(event: Event, api: Api) -> None:
    """Sets the client claims on a machine client's access token."""
    client_claims(event.client, event.config, api)


def on_authorize(event: Event, api: Api) -> None:
    """Sets the client claims on the access token of a user flow."""
    client_claims(event.client, event.config, api)


def client_claims(client: Client, config: Config, api: Api) -> None:
    """Sets the access-token claims describing ``client``."""
    namespace = config.get("namespace")
    if not namespace:
        raise ValueError('client-claims: config key "namespace" is required')

    selected = metadata_keys(config)
    if selected is None:
        keys = sorted(client.metadata)
    else:
        keys = [key for key in selected if key in client.metadata]

    names = []
    for key in keys:
        if key in BUILT_IN:
            api.log.warn(
                f"client-claims: client {quoted(client.id)} has a metadata key {quoted(key)}, "
                "which would shadow a built-in claim; skipped"
            )
            continue
        api.access_token.set_custom_claim(f"{namespace}{key}", client.metadata[key])
        names.append(key)
    api.access_token.set_custom_claim(f"{namespace}client_name", client.name)
    api.access_token.set_custom_claim(f"{namespace}client_app_type", client.app_type)

    api.log.debug(
        f"client-claims: client {quoted(client.id)}: set client_name, client_app_type and "
        f"{len(names)} metadata claim(s) [{', '.join(names)}] under {namespace}"
    )


def metadata_keys(config: Config) -> Optional[list[str]]:
    """The configured ``metadata_keys``, or ``None`` for "every key"."""
    if "metadata_keys" not in config:
        return None
    value = config.json("metadata_keys")
    if isinstance(value, list) and all(isinstance(key, str) for key in value):
        return value
    if isinstance(value, str):
        return [key.strip() for key in value.split(",") if key.strip()]
    raise ValueError(
        'client-claims: config key "metadata_keys" must be a list of strings '
        "or a comma-separated string"
    )


def quoted(text: str) -> str:
    """``text`` in double quotes, escaped, as the Rust plugin logs it."""
    return json.dumps(text, ensure_ascii=False)
