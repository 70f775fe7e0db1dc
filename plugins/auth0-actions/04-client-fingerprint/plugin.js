/**
 * Peppered client fingerprint (Machine to Machine).
 *
 * Downstream services log which integration called them, but should not log
 * raw client IDs. This Action derives a short, stable fingerprint from the
 * client ID and a secret pepper (`event.secrets.FINGERPRINT_PEPPER`) and puts
 * it in the access token. The mixing function is a keyed FNV-1a written out
 * here, so no crypto module is needed; it is a label, not a signature. Without
 * the pepper the claim is skipped and a line is logged.
 */
const CLAIM = "https://example.com/client_fp";

// 32-bit FNV-1a over the UTF-16 code units of `text`, as 8 hex digits.
function fnv1a(text) {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, "0");
}

// Inner and outer passes keyed with the pepper, in the spirit of an HMAC.
async function deriveFingerprint(pepper, clientId) {
  const inner = fnv1a(`${pepper}|in|${clientId}`);
  const outer = fnv1a(`${pepper}|out|${inner}`);
  return `fp_${outer}${inner}`;
}

exports.onExecuteCredentialsExchange = async (event, api) => {
  const pepper = event.secrets.FINGERPRINT_PEPPER;
  if (!pepper) {
    console.log("FINGERPRINT_PEPPER is not set; client fingerprint skipped");
    return;
  }

  const fingerprint = await deriveFingerprint(pepper, event.client.client_id);
  api.accessToken.setCustomClaim(CLAIM, fingerprint);
  console.log(`fingerprint ${fingerprint} issued to ${event.client.name}`);
};
