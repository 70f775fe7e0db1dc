/**
 * Partner profile claim, cached per client (Machine to Machine).
 *
 * Partner integrations get a `https://example.com/partner` claim describing
 * the partner: its id, its support tier and its per-minute request quota.
 * Building the profile stands in for a slow lookup (a partner registry, say),
 * so the result is kept in the Actions cache for ten minutes, keyed by client
 * ID. Cached values are strings, hence the JSON round trip. A failed cache
 * write is logged and otherwise ignored: the token is still issued.
 */
const CLAIM = "https://example.com/partner";
const TEN_MINUTES = 10 * 60 * 1000;

const QUOTA_BY_TIER = { gold: 1200, silver: 600, bronze: 120 };

// Builds the profile from the client's metadata (strings only in Auth0).
async function loadPartnerProfile(client) {
  const metadata = client.metadata || {};
  const tier = metadata.partner_tier || "bronze";
  return {
    id: metadata.partner_id || client.client_id,
    tier,
    quota_per_minute: QUOTA_BY_TIER[tier] || QUOTA_BY_TIER.bronze,
  };
}

exports.onExecuteCredentialsExchange = async (event, api) => {
  const key = `partner-profile:${event.client.client_id}`;
  const cached = api.cache.get(key);

  let profile;
  if (cached) {
    profile = JSON.parse(cached.value);
    console.log(`partner profile for ${event.client.client_id} from cache (expires_at ${cached.expires_at})`);
  } else {
    profile = await loadPartnerProfile(event.client);
    const stored = api.cache.set(key, JSON.stringify(profile), { ttl: TEN_MINUTES });
    if (stored.type === "success") {
      console.log(`partner profile for ${event.client.client_id} built and cached`);
    } else {
      console.log(`partner profile for ${event.client.client_id} built; cache write failed: ${stored.code}`);
    }
  }

  api.accessToken.setCustomClaim(CLAIM, profile);
};
