/**
 * Declared purpose for Billing API tokens (Machine to Machine).
 *
 * Callers of the Billing API must say why they want a token: the token
 * request carries an extra form field, `purpose`, which must be one of a
 * short list. The purpose is recorded in the access token next to whatever
 * earlier Actions already put there (read from `event.accessToken`), so the
 * API's audit log can show it. A missing or unknown purpose is refused with
 * `invalid_request`. Tokens for other APIs pass through untouched.
 */
const BILLING_API = "https://billing.example.com";
const PURPOSES = ["invoice-export", "reconciliation", "dunning"];
const CLAIM = "https://example.com/purpose";

exports.onExecuteCredentialsExchange = async (event, api) => {
  if (event.resource_server.identifier !== BILLING_API) return;

  const body = event.request.body || {};
  const purpose = body.purpose;
  if (!purpose || !PURPOSES.includes(purpose)) {
    api.access.deny(
      "invalid_request",
      `The Billing API needs a purpose field set to one of: ${PURPOSES.join(", ")}.`,
    );
    return;
  }

  const earlier = Object.keys(event.accessToken.customClaims || {});
  const scopes = event.accessToken.scope || [];
  console.log(
    `${event.client.client_id} purpose=${purpose} scopes=[${scopes.join(" ")}] existing claims=[${earlier.join(" ")}]`,
  );

  api.accessToken.setCustomClaim(CLAIM, purpose);
};
