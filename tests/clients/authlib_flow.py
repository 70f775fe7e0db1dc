"""Token introspection and revocation with Authlib's requests client, unmodified.

Driven by tests/integration/client_libraries.rs, which starts Tessera with its
issuer at its own address and checks what this prints: one JSON object on the
last line of stdout. Any step the library refuses raises, and the test fails.

Usage: python authlib_flow.py ISSUER AUDIENCE CLIENT_ID CLIENT_SECRET RS_ID RS_SECRET
"""

import json
import os
import sys

# Tessera listens on plain http on loopback in the test; Authlib refuses
# http endpoints unless told this is deliberate.
os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")

import requests  # noqa: E402
from authlib.integrations.requests_client import OAuth2Session  # noqa: E402


def main():
    issuer, audience, client_id, client_secret, rs_id, rs_secret = sys.argv[1:7]
    meta = requests.get(issuer + "/.well-known/oauth-authorization-server", timeout=10).json()
    assert meta["issuer"] == issuer, meta

    # The application: client_secret_basic, as Authlib defaults to.
    app = OAuth2Session(client_id, client_secret, scope="read:orders")
    token = app.fetch_token(
        meta["token_endpoint"], grant_type="client_credentials", audience=audience
    )
    access_token = token["access_token"]

    # The API's resource server introspects it, once with Basic, once with
    # client_secret_post.
    rs_basic = OAuth2Session(rs_id, rs_secret)
    rs_post = OAuth2Session(rs_id, rs_secret, token_endpoint_auth_method="client_secret_post")
    introspect = meta["introspection_endpoint"]
    active = rs_basic.introspect_token(introspect, token=access_token, token_type_hint="access_token")
    active.raise_for_status()
    active_post = rs_post.introspect_token(introspect, token=access_token)
    active_post.raise_for_status()
    # The application may introspect its own token too.
    own = app.introspect_token(introspect, token=access_token).json()

    # A wrong secret is refused as RFC 7662 §2.3 says: 401.
    wrong = OAuth2Session(rs_id, rs_secret + "x").introspect_token(introspect, token=access_token)

    # The application revokes its token; the resource server then sees it
    # inactive, and revoking it again, or revoking nonsense, is still 200.
    revoked = app.revoke_token(meta["revocation_endpoint"], token=access_token, token_type_hint="access_token")
    revoked.raise_for_status()
    again = app.revoke_token(meta["revocation_endpoint"], token=access_token)
    nonsense = app.revoke_token(meta["revocation_endpoint"], token="not-a-token")
    after = rs_basic.introspect_token(introspect, token=access_token).json()
    garbage = rs_basic.introspect_token(introspect, token="not-a-token").json()

    print(
        json.dumps(
            {
                "token_type": token["token_type"],
                "active": active.json(),
                "active_post": active_post.json(),
                "own": own,
                "wrong_secret_status": wrong.status_code,
                "revoke_status": [revoked.status_code, again.status_code, nonsense.status_code],
                "after_revoke": after,
                "garbage": garbage,
                "access_token": access_token,
            }
        )
    )


if __name__ == "__main__":
    main()
