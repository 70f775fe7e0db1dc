#!/usr/bin/env bash
# Signs a local user in to a running Tessera without a browser, with curl: the
# authorization code flow with PKCE, as a single-page app would run it, then
# the code exchanged for tokens. Prints the token response (JSON) on standard
# output. For trying things on your own machine: a real app signs users in
# through their browser.
#
#   printf '%s\n' 'correct horse battery staple' | examples/sign-in.sh ada@example.com
#
# The password is the first line of standard input (never an argument). The
# rest comes from the environment, with the demo's values as defaults:
#   ISSUER    http://127.0.0.1:8080
#   CLIENT    orders-spa                          (a spa or native client)
#   REDIRECT  http://127.0.0.1:3000/callback      (one of its redirect_uris)
#   AUDIENCE  https://orders.example.com
#   SCOPE     openid profile email offline_access read:orders
# Needs bash, curl and coreutils.
set -euo pipefail

email=${1:?usage: printf '%s\n' PASSWORD | $0 EMAIL}
issuer=${ISSUER:-http://127.0.0.1:8080}
client=${CLIENT:-orders-spa}
redirect=${REDIRECT:-http://127.0.0.1:3000/callback}
audience=${AUDIENCE:-https://orders.example.com}
scope=${SCOPE:-openid profile email offline_access read:orders}
IFS= read -r password || true
[ -n "$password" ] || { echo "sign-in.sh: no password on standard input" >&2; exit 2; }

jar=$(mktemp)
trap 'rm -f "$jar"' EXIT

# PKCE (RFC 7636): a random verifier, and its SHA-256 as the challenge, both
# base64url without padding.
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
verifier=$(head -c 32 /dev/urandom | b64url)
hex=$(printf '%s' "$verifier" | sha256sum | cut -d' ' -f1)
challenge=$(printf "$(printf '%s' "$hex" | sed 's/../\\x&/g')" | b64url)
state=$(head -c 12 /dev/urandom | b64url)
nonce=$(head -c 12 /dev/urandom | b64url)

# 1. /authorize answers with the login page and sets the browser cookie; the
#    page's hidden fields tx and csrf go back with the form.
page=$(curl -sS -f -c "$jar" -G "$issuer/authorize" \
  --data-urlencode response_type=code \
  --data-urlencode "client_id=$client" \
  --data-urlencode "redirect_uri=$redirect" \
  --data-urlencode "scope=$scope" \
  --data-urlencode "audience=$audience" \
  --data-urlencode "state=$state" \
  --data-urlencode "nonce=$nonce" \
  --data-urlencode "code_challenge=$challenge" \
  --data-urlencode code_challenge_method=S256)
field() { printf '%s' "$page" | sed -n "s/.*name=\"$1\" value=\"\([^\"]*\)\".*/\1/p"; }
tx=$(field tx)
csrf=$(field csrf)
if [ -z "$tx" ] || [ -z "$csrf" ]; then
  echo "sign-in.sh: $issuer/authorize did not show the login page:" >&2
  printf '%s\n' "$page" | sed 's/<[^>]*>/ /g' | tr -s ' ' | head -c 400 >&2
  echo >&2
  exit 1
fi

# 2. The form, posted with the cookie: a 303 to the app's redirect URI with
#    the code (or an error) in its query.
location=$(curl -sS -b "$jar" -o /dev/null -w '%{redirect_url}' "$issuer/login" \
  --data-urlencode "tx=$tx" --data-urlencode "csrf=$csrf" \
  --data-urlencode "email=$email" --data-urlencode "password=$password")
query=${location#*\?}
param() { printf '%s' "$query" | tr '&' '\n' | sed -n "s/^$1=//p" | head -n 1; }
code=$(param code)
if [ -z "$code" ]; then
  error=$(param error)
  if [ -n "$error" ]; then
    echo "sign-in.sh: $error: $(param error_description | sed 's/+/ /g; s/%\([0-9A-F][0-9A-F]\)/\\x\1/g' | xargs -0 printf '%b')" >&2
  else
    echo "sign-in.sh: the sign-in was refused (wrong email or password?)" >&2
  fi
  exit 1
fi
if [ "$(param state)" != "$state" ]; then
  echo "sign-in.sh: the redirect carries another state" >&2
  exit 1
fi

# 3. The code, with the verifier, for tokens.
curl -sS "$issuer/oauth/token" \
  --data-urlencode grant_type=authorization_code \
  --data-urlencode "client_id=$client" \
  --data-urlencode "redirect_uri=$redirect" \
  --data-urlencode "code_verifier=$verifier" \
  --data-urlencode "code=$code"
echo
