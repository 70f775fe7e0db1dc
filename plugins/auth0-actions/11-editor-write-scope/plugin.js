/**
 * Role-based scopes for the Content API (Post Login).
 *
 * The newsroom app only ever asks for `read:articles`; what a person may do
 * beyond reading depends on their roles in `app_metadata.roles`. Editors get
 * `write:articles` added to their access token and publishers also get
 * `publish:articles`. Nothing is added unless the token is for the Content
 * API and reading was requested.
 */
const CONTENT_API = "https://content.example.com";

const EXTRA_SCOPES_BY_ROLE = {
  editor: ["write:articles"],
  publisher: ["write:articles", "publish:articles"],
};

exports.onExecutePostLogin = async (event, api) => {
  if (!event.resource_server || event.resource_server.identifier !== CONTENT_API) return;

  const requested = event.transaction.requested_scopes || [];
  if (!requested.includes("read:articles")) return;

  const roles = (event.user.app_metadata && event.user.app_metadata.roles) || [];
  const extra = new Set();
  for (const role of roles) {
    for (const scope of EXTRA_SCOPES_BY_ROLE[role] || []) extra.add(scope);
  }

  for (const scope of extra) {
    api.accessToken.addScope(scope);
  }
  console.log(`${event.user.email}: roles [${roles.join(", ")}] added [${[...extra].join(", ")}]`);
};
