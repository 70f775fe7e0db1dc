/**
 * @file client-claims: puts the calling application into its access token.
 *
 * The JavaScript port of `plugins/client-claims` (Rust): the same claims, the
 * same configuration, the same errors and log lines.
 *
 * An API exposed to third parties wants to know, from the token alone, which
 * application is calling. This plugin sets namespaced claims on the access
 * token:
 *
 * - `{namespace}client_name`: the client's display name;
 * - `{namespace}client_app_type`: `spa`, `regular_web`, `native` or `machine`;
 * - `{namespace}{key}`: for each selected key of the client's metadata that
 *   the client has, its value (any JSON).
 *
 * It runs at both stages, `credentials-exchange` (machine clients) and
 * `authorize` (user flows), with the same claims.
 *
 * Configuration:
 *
 * - `namespace` (required): the prefix of every claim name, used as is, e.g.
 *   `"https://claims.example.com/"`. A missing or empty namespace is a
 *   configuration error: the plugin throws
 *   `client-claims: config key "namespace" is required`, the component traps,
 *   and the host fails the request per the plugin's `on_error`.
 * - `metadata_keys` (optional): which client metadata keys to copy, as a list
 *   (`["partner", "tier"]`) or a comma-separated string (`"partner, tier"`).
 *   Default: every key. An empty list copies none. Anything else throws.
 *
 * The built-in claims win over metadata keys of the same name (`client_name`,
 * `client_app_type`); such keys are skipped with a warning.
 */

/** Claim names (after the namespace) that the plugin sets itself. */
const BUILT_IN = ["client_name", "client_app_type"];

/** @type {import("./tessera/index.js").OnCredentialsExchange} */
export function onCredentialsExchange(event, api) {
  clientClaims(event, api);
}

/** @type {import("./tessera/index.js").OnAuthorize} */
export function onAuthorize(event, api) {
  clientClaims(event, api);
}

/**
 * Sets the access-token claims describing `event.client`.
 *
 * @param {import("./tessera/index.js").CredentialsExchangeEvent | import("./tessera/index.js").AuthorizeEvent} event
 * @param {import("./tessera/index.js").Api} api
 */
function clientClaims(event, api) {
  const { client } = event;
  const namespace = event.config.namespace;
  if (!namespace) throw new Error('client-claims: config key "namespace" is required');

  const selected = metadataKeys(event.config);
  // Every key in name order, as the Rust plugin (whose metadata map is sorted).
  const keys =
    selected === null
      ? Object.keys(client.metadata).sort()
      : selected.filter((key) => Object.hasOwn(client.metadata, key));

  const names = [];
  for (const key of keys) {
    if (BUILT_IN.includes(key)) {
      api.log.warn(
        `client-claims: client ${JSON.stringify(client.id)} has a metadata key ${JSON.stringify(key)}, which would shadow a built-in claim; skipped`,
      );
      continue;
    }
    api.accessToken.setCustomClaim(`${namespace}${key}`, client.metadata[key]);
    names.push(key);
  }
  api.accessToken
    .setCustomClaim(`${namespace}client_name`, client.name)
    .accessToken.setCustomClaim(`${namespace}client_app_type`, client.app_type);

  api.log.debug(
    `client-claims: client ${JSON.stringify(client.id)}: set client_name, client_app_type and ${names.length} metadata claim(s) [${names.join(", ")}] under ${namespace}`,
  );
}

/**
 * The configured `metadata_keys`, or `null` for "every key".
 *
 * @param {import("./tessera/index.js").Config} config
 * @returns {string[] | null}
 */
function metadataKeys(config) {
  const value = config.json("metadata_keys");
  if (value === undefined) return null;
  if (typeof value === "string") {
    return value
      .split(",")
      .map((key) => key.trim())
      .filter((key) => key !== "");
  }
  if (Array.isArray(value) && value.every((key) => typeof key === "string")) return value;
  throw new Error('client-claims: config key "metadata_keys" must be a list of strings or a comma-separated string');
}
