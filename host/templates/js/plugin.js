/**
 * {{name}}: a Tessera plugin.
 *
 * At the credentials-exchange stage (client credentials) it puts the calling
 * application's name, and its `tier` metadata when it has one, into the access
 * token under a namespace taken from the plugin's configuration:
 *
 *     [[plugins]]
 *     name = "{{name}}"
 *     path = "plugins/{{name}}.wasm"
 *     config = { namespace = "https://claims.example.com/" }
 *
 * Build: `tessera plugin build .`; unit tests: `npm test`; the stage in the
 * real runtime: `tessera plugin test {{name}}.wasm --stage credentials-exchange --event event.json`.
 * Add `export function onAuthorize(event, api)` to run after a user signs in.
 */
export function onCredentialsExchange(event, api) {
  const namespace = event.config.namespace ?? "https://example.com/";
  api.accessToken.setCustomClaim(`${namespace}client_name`, event.client.name);
  const tier = event.client.metadata.tier;
  if (tier !== undefined) {
    api.accessToken.setCustomClaim(`${namespace}tier`, tier);
  }
  console.log(`{{name}}: claims for ${event.client.id}`);
}
