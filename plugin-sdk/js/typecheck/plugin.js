// @ts-check
// Type-checked by `tsc -p tsconfig.json` (CI): a plugin written against the
// SDK's declarations, whose event parts come from the WIT (src/event.d.ts,
// generated). Each `@ts-expect-error` line must be an error, so the check
// fails if the types ever go loose (`any`) or drift from the event.

/** @type {import("../src/index.js").OnCredentialsExchange} */
export function onCredentialsExchange(event, api) {
  /** @type {string} */
  const id = event.client.client_id;
  /** @type {"spa" | "regular_web" | "native" | "machine"} */
  const appType = event.client.app_type;
  /** @type {import("../src/index.js").JsonValue | undefined} */
  const tier = event.client.metadata.tier;
  /** @type {string | undefined} */
  const scope = event.request.params.scope;
  /** @type {readonly string[]} */
  const scopes = event.access_token.scopes;
  /** @type {string | null} */
  const audience = event.transaction.requested_audience;
  api.accessToken.setCustomClaim("https://claims.example.com/client", { id, appType, tier, scope, audience });
  if (scopes.includes("write:orders")) api.accessToken.removeScope("write:orders");

  // @ts-expect-error: a client's name is a string
  /** @type {number} */ const name = event.client.name;
  // @ts-expect-error: the event is read-only
  event.client.name = "other";
  // @ts-expect-error: no such field in the WIT
  void event.client.secret;
  void name;
}

/** @type {import("../src/index.js").OnAuthorize} */
export function onAuthorize(event, api) {
  /** @type {boolean} */
  const verified = event.user.email_verified;
  /** @type {string} */
  const userId = event.user.user_id;
  if (event.api !== null) api.idToken.setCustomClaim("api", event.api.identifier);
  api.idToken.setCustomClaim("verified", verified).idToken.setCustomClaim("user", userId);
  // @ts-expect-error: the API may be absent in authorize
  void event.api.identifier;
}
