/**
 * Per-client scope ceiling for the Orders API (Machine to Machine).
 *
 * Client grants in the dashboard are coarse, so some integrations carry a
 * tighter list in their application metadata: `orders_scopes`, the
 * space-separated scopes that client may ask the Orders API for. A request
 * naming anything beyond that list is refused with `invalid_scope` rather than
 * silently narrowed, so the integrator sees the mistake. Other APIs, and
 * clients without the key, are left alone.
 */
const ORDERS_API = "https://orders.example.com";

exports.onExecuteCredentialsExchange = async (event, api) => {
  if (event.resource_server.identifier !== ORDERS_API) return;

  const ceiling = (event.client.metadata && event.client.metadata.orders_scopes) || "";
  if (ceiling === "") return;

  const permitted = ceiling.split(" ").filter(Boolean);
  const requested = event.transaction.requested_scopes || [];
  const extra = requested.filter((scope) => !permitted.includes(scope));

  console.log(`${event.client.client_id} asked for [${requested.join(", ")}], ceiling [${permitted.join(", ")}]`);

  if (extra.length > 0) {
    api.access.deny("invalid_scope", `${event.client.name} may not request ${extra.join(" ")} on the Orders API`);
  }
};
