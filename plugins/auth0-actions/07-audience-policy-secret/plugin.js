/**
 * Audience policy kept in a secret (Machine to Machine).
 *
 * Which machine clients may get tokens for which APIs is kept outside the
 * dashboard, in the Action secret `AUDIENCE_POLICY`: a JSON object mapping a
 * client ID to the list of API identifiers it may call. A client asking for
 * an API that is not on its list is refused with `invalid_request`.
 *
 * The policy is required. If the secret is missing or is not valid JSON the
 * Action throws, which fails the exchange with a server error instead of
 * letting tokens out unchecked.
 */

function readPolicy(secrets) {
  const raw = secrets.AUDIENCE_POLICY;
  if (!raw) {
    throw new Error("AUDIENCE_POLICY secret is missing: cannot check which APIs this client may call");
  }
  try {
    return JSON.parse(raw);
  } catch (err) {
    throw new Error(`AUDIENCE_POLICY secret is not valid JSON: ${err.message}`);
  }
}

exports.onExecuteCredentialsExchange = async (event, api) => {
  const audience = event.resource_server.identifier;
  console.log(`checking audience policy: ${event.client.client_id} -> ${audience}`);

  const policy = readPolicy(event.secrets);
  const allowed = policy[event.client.client_id] || [];

  if (!allowed.includes(audience)) {
    api.access.deny("invalid_request", `${event.client.name} is not allowed to request tokens for ${audience}`);
    return;
  }
  console.log(`audience ${audience} allowed for ${event.client.client_id}`);
};
