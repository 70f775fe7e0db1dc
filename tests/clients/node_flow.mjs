// A relying party and a resource server built on openid-client and
// oauth4webapi, unmodified, against a running Tessera. Driven by
// tests/integration/client_libraries.rs, which starts Tessera with its issuer
// at its own address and checks what this prints: one JSON object on the
// last line of stdout. Whatever a library refuses throws, and the test fails.
//
// The user's part (the login page) is played with fetch and a cookie jar;
// everything the relying party does is the libraries' own code.
//
// Usage: node node_flow.mjs ISSUER AUDIENCE CLIENT_ID CLIENT_SECRET REDIRECT_URI
//          POST_LOGOUT_URI RS_ID RS_SECRET EMAIL PASSWORD
import * as oauth from "oauth4webapi";
import * as client from "openid-client";

const [issuer, audience, clientId, clientSecret, redirectUri, postLogoutUri, rsId, rsSecret, email, password] =
  process.argv.slice(2);
const issuerUrl = new URL(issuer);
// Tessera listens on plain http on loopback in the test; both libraries
// refuse http unless told this is deliberate.
const insecure = { execute: [client.allowInsecureRequests] };

// oauth4webapi's discovery checks the documents strictly (issuer equal to
// the URL asked, endpoints well formed), both the OIDC and the RFC 8414 one.
const discovered = {};
for (const algorithm of ["oidc", "oauth2"]) {
  const response = await oauth.discoveryRequest(issuerUrl, { algorithm, [oauth.allowInsecureRequests]: true });
  discovered[algorithm] = await oauth.processDiscoveryResponse(issuerUrl, response);
}

// A browser: cookies kept by name, redirects not followed.
const jar = new Map();
async function browse(url, init = {}) {
  const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
  const response = await fetch(url, { ...init, redirect: "manual", headers: { ...init.headers, cookie } });
  for (const line of response.headers.getSetCookie()) {
    const [pair, ...attributes] = line.split(";");
    const [name, value] = pair.split("=");
    const expired = attributes.some((a) => a.trim().toLowerCase() === "max-age=0");
    if (expired) jar.delete(name.trim());
    else jar.set(name.trim(), value);
  }
  return response;
}
const hidden = (html, name) => {
  const match = html.match(new RegExp(`name="${name}" value="([^"]*)"`));
  if (!match) throw new Error(`no ${name} field on the login page`);
  return match[1];
};

// The relying party: a confidential web application, client_secret_basic.
const rp = await client.discovery(issuerUrl, clientId, undefined, client.ClientSecretBasic(clientSecret), insecure);
const codeVerifier = client.randomPKCECodeVerifier();
const state = client.randomState();
const nonce = client.randomNonce();
const authorizeUrl = client.buildAuthorizationUrl(rp, {
  redirect_uri: redirectUri,
  scope: "openid email offline_access read:orders",
  audience,
  state,
  nonce,
  code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
  code_challenge_method: "S256",
});

const loginPage = await browse(authorizeUrl);
if (loginPage.status !== 200) throw new Error(`authorize: ${loginPage.status}`);
const html = await loginPage.text();
const signedIn = await browse(new URL("/login", issuer), {
  method: "POST",
  headers: { "content-type": "application/x-www-form-urlencoded" },
  body: new URLSearchParams({ tx: hidden(html, "tx"), csrf: hidden(html, "csrf"), email, password }),
});
if (signedIn.status !== 303) throw new Error(`login: ${signedIn.status} ${await signedIn.text()}`);
const callback = new URL(signedIn.headers.get("location"));

// openid-client checks the callback (state, RFC 9207 iss), exchanges the code
// with the PKCE verifier, and validates the ID token (signature from the
// JWKS, iss, aud, nonce, exp, iat).
const tokens = await client.authorizationCodeGrant(rp, callback, {
  pkceCodeVerifier: codeVerifier,
  expectedState: state,
  expectedNonce: nonce,
  idTokenExpected: true,
});
const idClaims = tokens.claims();

// The API checks the access token as an RFC 9068 resource server would.
const atClaims = await oauth.validateJwtAccessToken(
  discovered.oidc,
  new Request(`${audience}/orders`, { headers: { authorization: `Bearer ${tokens.access_token}` } }),
  audience,
  { [oauth.allowInsecureRequests]: true },
);

// Refresh once: the new pair replaces the old.
const refreshed = await client.refreshTokenGrant(rp, tokens.refresh_token);

// The API's resource server introspects the access token (openid-client).
const rs = await client.discovery(issuerUrl, rsId, undefined, client.ClientSecretBasic(rsSecret), insecure);
const introspectedAccess = await client.tokenIntrospection(rs, refreshed.access_token);
// The relying party introspects its refresh tokens: the spent one and the
// current one (oauth4webapi, client_secret_post).
const asMeta = discovered.oauth2;
const introspectRefresh = async (token) => {
  const response = await oauth.introspectionRequest(asMeta, { client_id: clientId }, oauth.ClientSecretPost(clientSecret), token, {
    [oauth.allowInsecureRequests]: true,
  });
  return oauth.processIntrospectionResponse(asMeta, { client_id: clientId }, response);
};
const spentRefresh = await introspectRefresh(tokens.refresh_token);
const liveRefresh = await introspectRefresh(refreshed.refresh_token);

// Revoking the refresh token ends its family; the token endpoint then
// refuses it, and introspection says inactive.
await client.tokenRevocation(rp, refreshed.refresh_token, { token_type_hint: "refresh_token" });
const revokedRefresh = await introspectRefresh(refreshed.refresh_token);
let refreshAfterRevoke;
try {
  await client.refreshTokenGrant(rp, refreshed.refresh_token);
  refreshAfterRevoke = "accepted";
} catch (e) {
  refreshAfterRevoke = e.error ?? String(e);
}
// Revoking the access token puts it on the revocation list.
await client.tokenRevocation(rp, refreshed.access_token);
const revokedAccess = await client.tokenIntrospection(rs, refreshed.access_token);

// While the login session lives, a new authorization request needs no login.
const again = await browse(
  client.buildAuthorizationUrl(rp, {
    redirect_uri: redirectUri,
    scope: "openid",
    state,
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: "S256",
  }),
);

// RP-initiated logout with the ID token as the hint: straight back to the
// application with its state, the session ended.
const logoutState = client.randomState();
const endSession = client.buildEndSessionUrl(rp, {
  id_token_hint: tokens.id_token,
  post_logout_redirect_uri: postLogoutUri,
  state: logoutState,
});
const logout = await browse(endSession);
const afterLogout = await browse(authorizeUrl);

console.log(
  JSON.stringify({
    discovered: { oidc: discovered.oidc.issuer, oauth2: discovered.oauth2.issuer },
    end_session_endpoint: discovered.oidc.end_session_endpoint,
    id_token: { sub: idClaims.sub, aud: idClaims.aud, nonce: idClaims.nonce, email: idClaims.email },
    access_token: { sub: atClaims.sub, aud: atClaims.aud, client_id: atClaims.client_id, scope: atClaims.scope },
    refreshed: refreshed.access_token !== tokens.access_token && refreshed.refresh_token !== tokens.refresh_token,
    introspected_access: introspectedAccess,
    spent_refresh: spentRefresh,
    live_refresh: liveRefresh,
    revoked_refresh: revokedRefresh,
    refresh_after_revoke: refreshAfterRevoke,
    revoked_access: revokedAccess,
    authorize_in_session: again.status,
    logout: { status: logout.status, location: logout.headers.get("location"), state: logoutState },
    authorize_after_logout: afterLogout.status,
  }),
);
