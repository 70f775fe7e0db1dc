"""{{name}}: a Tessera plugin.

At the credentials-exchange stage (client credentials) it puts the calling
application's name, and its ``tier`` metadata when it has one, into the access
token under a namespace taken from the plugin's configuration::

    [[plugins]]
    name = "{{name}}"
    path = "plugins/{{name}}.wasm"
    config = { namespace = "https://claims.example.com/" }

Build: ``tessera plugin build .``; unit tests: ``python3 -m unittest``; the
stage in the real runtime:
``tessera plugin test {{name}}.wasm --stage credentials-exchange --event event.json``.
Add ``def on_authorize(event, api)`` to run after a user signs in.
"""


def on_credentials_exchange(event, api):
    namespace = event.config.get("namespace") or "https://example.com/"
    api.access_token.set_custom_claim(f"{namespace}client_name", event.client.name)
    tier = event.client.metadata.get("tier")
    if tier is not None:
        api.access_token.set_custom_claim(f"{namespace}tier", tier)
    api.log.info(f"{{name}}: claims for {event.client.id}")
