/**
 * Roles from app_metadata into both tokens (Post Login).
 *
 * Support tooling stores a user's roles in `app_metadata.roles` (a list of
 * strings). The API reads them from the access token and the single-page app
 * reads them from the ID token to decide which screens to show, so both get
 * the same namespaced `https://example.com/roles` claim. A user without roles
 * gets an empty list, never a missing claim, which keeps the consumers simple.
 */
const ROLES_CLAIM = "https://example.com/roles";

exports.onExecutePostLogin = async (event, api) => {
  const raw = (event.user.app_metadata || {}).roles;
  const roles = Array.isArray(raw) ? raw.filter((role) => typeof role === "string") : [];

  api.accessToken.setCustomClaim(ROLES_CLAIM, roles);
  api.idToken.setCustomClaim(ROLES_CLAIM, roles);

  console.log(`${event.user.user_id} signed in to ${event.client.name} with roles: ${roles.join(", ") || "(none)"}`);
};
