/**
 * Workspace chosen at sign-in (Post Login).
 *
 * The project tracker links to the sign-in page with `?workspace=<id>` so the
 * user lands in the right team space. This Action checks that the user really
 * belongs to that workspace (memberships live in `app_metadata.workspaces`)
 * and, if so, records the workspace and the user's role in it in the access
 * token, and the workspace in the ID token for the app's header. Asking for a
 * workspace the user is not a member of ends the sign-in. Without the query
 * parameter the user's first workspace is used.
 */
const NS = "https://example.com/";

// Resolves the membership for `wanted` (or the first one), or null.
async function findWorkspace(user, wanted) {
  const memberships = (user.app_metadata && user.app_metadata.workspaces) || [];
  if (!wanted) return memberships[0] || null;
  return memberships.find((membership) => membership.id === wanted) || null;
}

exports.onExecutePostLogin = async (event, api) => {
  const wanted = event.request.query && event.request.query.workspace;
  const membership = await findWorkspace(event.user, wanted);

  if (!membership) {
    console.log(`${event.user.user_id} is not a member of workspace ${wanted || "(any)"}`);
    api.access.deny(`You do not have access to the workspace "${wanted || ""}".`);
    return;
  }

  api.accessToken.setCustomClaim(`${NS}workspace`, membership.id);
  api.accessToken.setCustomClaim(`${NS}workspace_role`, membership.role);
  api.idToken.setCustomClaim(`${NS}workspace`, membership.id);
  console.log(`${event.user.user_id} entered workspace ${membership.id} as ${membership.role}`);
};
