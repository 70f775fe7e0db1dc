/**
 * Profile hints in the ID token (Post Login).
 *
 * The web app greets people by their chosen name and renders dates and colors
 * the way they like, straight from the ID token. Three small lookups, each
 * written as an async function as if it read from a profile service, run
 * together with Promise.all; their results become namespaced ID-token claims.
 * Preferences the user never set fall back to defaults.
 */
const NS = "https://example.com/";

async function displayName(user) {
  const meta = user.user_metadata || {};
  return meta.nickname || user.name || user.email;
}

async function locale(user) {
  const meta = user.user_metadata || {};
  return meta.locale || "en-US";
}

async function preferences(user) {
  const meta = user.user_metadata || {};
  return {
    theme: meta.theme || "system",
    timezone: meta.timezone || "UTC",
    newsletter: meta.newsletter === true,
  };
}

exports.onExecutePostLogin = async (event, api) => {
  const [name, lang, prefs] = await Promise.all([
    displayName(event.user),
    locale(event.user),
    preferences(event.user),
  ]);

  api.idToken.setCustomClaim(`${NS}display_name`, name);
  api.idToken.setCustomClaim(`${NS}locale`, lang);
  api.idToken.setCustomClaim(`${NS}preferences`, prefs);

  console.log(`profile claims for ${event.user.user_id}: ${name}, ${lang}, theme ${prefs.theme}`);
};
