/**
 * Org claims from application metadata (Machine to Machine).
 *
 * Each machine client is registered for one customer organization: its
 * application metadata carries `tenant_id`, `org_name` and (optionally)
 * `region`. This Action copies them into the access token as namespaced
 * claims, so the API can tell which customer is calling without another
 * lookup. A client without `tenant_id` gets no org claims at all.
 */
const NAMESPACE = "https://example.com/";

exports.onExecuteCredentialsExchange = async (event, api) => {
  const metadata = event.client.metadata || {};

  if (!metadata.tenant_id) {
    console.log(`client ${event.client.client_id} has no tenant_id; no org claims added`);
    return;
  }

  api.accessToken.setCustomClaim(`${NAMESPACE}tenant_id`, metadata.tenant_id);
  api.accessToken.setCustomClaim(`${NAMESPACE}org`, metadata.org_name || metadata.tenant_id);
  if (metadata.region) {
    api.accessToken.setCustomClaim(`${NAMESPACE}region`, metadata.region);
  }

  console.log(
    `org ${metadata.tenant_id} (${event.client.name}) on tenant ${event.tenant.id} for ${event.resource_server.identifier}`,
  );
};
