/**
 * Pseudonymous analytics ID, cached per user (Post Login).
 *
 * Product analytics must not see user IDs or email addresses. Each access
 * token instead carries `https://example.com/analytics_id`, a stable
 * pseudonym derived from the user ID and the secret `ANALYTICS_PEPPER`, so
 * the same person always maps to the same ID but the ID cannot be reversed
 * without the pepper. The derivation is cheap, but the Action still keeps the
 * result in the Actions cache for an hour to show the pattern: look up, and
 * on a miss compute and store.
 */
const CLAIM = "https://example.com/analytics_id";
const ONE_HOUR = 60 * 60 * 1000;

// Two independent 32-bit lanes (djb2-style and sdbm-style), keyed by the pepper.
function pseudonym(pepper, userId) {
  const input = `${pepper}:${userId}:${pepper.length}`;
  let a = 5381;
  let b = 0;
  for (let i = 0; i < input.length; i++) {
    const c = input.charCodeAt(i);
    a = (Math.imul(a, 33) ^ c) >>> 0;
    b = (c + (b << 6) + (b << 16) - b) >>> 0;
  }
  return `anon-${a.toString(36)}${b.toString(36)}`;
}

exports.onExecutePostLogin = async (event, api) => {
  const pepper = event.secrets.ANALYTICS_PEPPER;
  if (!pepper) {
    console.log("ANALYTICS_PEPPER not configured; no analytics_id claim");
    return;
  }

  const key = `analytics-id:${event.user.user_id}`;
  const hit = api.cache.get(key);
  let id;
  if (hit !== undefined) {
    id = hit.value;
    console.log(`analytics id cache hit for ${event.client.client_id}`);
  } else {
    id = pseudonym(pepper, event.user.user_id);
    const result = api.cache.set(key, id, { ttl: ONE_HOUR });
    console.log(`analytics id cache miss; stored: ${result.type}${result.type === "error" ? ` (${result.code})` : ""}`);
  }

  api.accessToken.setCustomClaim(CLAIM, id);
};
