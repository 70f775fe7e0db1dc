"""private_key_jwt (RFC 7523) with Authlib's requests client, unmodified.

Driven by tests/integration/client_libraries.rs in two steps:

  authlib_private_key_jwt.py keys DIR
      makes an RSA and an EC P-256 key pair with joserfc (Authlib's JOSE
      library) and writes DIR/private.json (for this script) and
      DIR/public.json (the JWK Set the test gives Tessera as `jwks_file`).

  authlib_private_key_jwt.py flow ISSUER AUDIENCE CLIENT_ID DIR
      gets a token signing the assertion with RS256 (Authlib's default),
      introspects and revokes it signing with ES256 (the assertion's audience
      is then the endpoint called, as Authlib does), replays one assertion,
      and tries a key Tessera does not know.

The flow prints one JSON object on the last line of stdout; any step the
library refuses raises, and the test fails.
"""

import json
import os
import sys

# Tessera listens on plain http on loopback in the test; Authlib refuses
# http endpoints unless told this is deliberate.
os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")

import requests  # noqa: E402
from authlib.integrations.requests_client import OAuth2Session  # noqa: E402
from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign  # noqa: E402
from joserfc.jwk import ECKey, RSAKey  # noqa: E402

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def keys(folder):
    rsa = RSAKey.generate_key(2048, parameters={"kid": "rsa-1", "use": "sig"})
    ec = ECKey.generate_key("P-256", parameters={"kid": "ec-1", "use": "sig"})
    with open(os.path.join(folder, "private.json"), "w") as f:
        json.dump({"rsa": rsa.as_dict(private=True), "ec": ec.as_dict(private=True)}, f)
    with open(os.path.join(folder, "public.json"), "w") as f:
        json.dump({"keys": [rsa.as_dict(private=False), ec.as_dict(private=False)]}, f)


def session(client_id, key, alg):
    # Authlib authenticates at the revocation endpoint with
    # client_secret_basic unless told otherwise.
    s = OAuth2Session(
        client_id,
        key,
        token_endpoint_auth_method="private_key_jwt",
        revocation_endpoint_auth_method="private_key_jwt",
    )
    s.register_client_auth_method(PrivateKeyJWT(alg=alg))
    return s


def flow(issuer, audience, client_id, folder):
    with open(os.path.join(folder, "private.json")) as f:
        private = json.load(f)
    rsa = RSAKey.import_key(private["rsa"])
    ec = ECKey.import_key(private["ec"])
    meta = requests.get(issuer + "/.well-known/oauth-authorization-server", timeout=10).json()
    token_endpoint = meta["token_endpoint"]

    token = session(client_id, rsa, "RS256").fetch_token(
        token_endpoint, grant_type="client_credentials", audience=audience
    )
    access_token = token["access_token"]

    with_ec = session(client_id, ec, "ES256")
    introspected = with_ec.introspect_token(meta["introspection_endpoint"], token=access_token)
    introspected.raise_for_status()
    revoked = with_ec.revoke_token(meta["revocation_endpoint"], token=access_token)
    after = with_ec.introspect_token(meta["introspection_endpoint"], token=access_token).json()

    # One assertion, made by Authlib, sent twice: the second is refused.
    assertion = private_key_jwt_sign(ec, client_id, token_endpoint, alg="ES256")
    form = {
        "grant_type": "client_credentials",
        "audience": audience,
        "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion,
    }
    first = requests.post(token_endpoint, data=form, timeout=10)
    replayed = requests.post(token_endpoint, data=form, timeout=10)

    # A key pair Tessera was not given.
    stranger = ECKey.generate_key("P-256", parameters={"kid": "ec-1"})
    strange = requests.post(
        token_endpoint,
        data=dict(form, client_assertion=private_key_jwt_sign(stranger, client_id, token_endpoint, alg="ES256")),
        timeout=10,
    )

    print(
        json.dumps(
            {
                "methods": meta["token_endpoint_auth_methods_supported"],
                "algs": meta["token_endpoint_auth_signing_alg_values_supported"],
                "access_token": access_token,
                "introspected": introspected.json(),
                "revoke_status": revoked.status_code,
                "after_revoke": after,
                "first": first.status_code,
                "replayed": [replayed.status_code, replayed.json()],
                "stranger": [strange.status_code, strange.json()],
            }
        )
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["keys"]:
        keys(sys.argv[2])
    elif sys.argv[1:2] == ["flow"]:
        flow(*sys.argv[2:6])
    else:
        sys.exit(__doc__)
