/**
 * Network allowlist for machine clients (Machine to Machine).
 *
 * A client may pin the networks it calls from in its application metadata:
 * `ip_allowlist` is a comma-separated list of IPv4 addresses and CIDR ranges
 * ("10.20.0.0/16, 192.0.2.10"). A token request from any other address is
 * refused with `invalid_request`. Clients without the key are not restricted.
 * The address matching is written out by hand, so the Action needs no
 * packages.
 */

// "a.b.c.d" -> 32-bit unsigned number, or null when it is not an IPv4 address.
function ipv4ToNumber(text) {
  const parts = String(text).trim().split(".");
  if (parts.length !== 4) return null;
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return null;
    const octet = Number(part);
    if (octet > 255) return null;
    value = value * 256 + octet;
  }
  return value;
}

// Does `ip` fall inside `entry`, a single address or "network/bits"?
function matches(ip, entry) {
  const [network, bitsText] = entry.split("/");
  const address = ipv4ToNumber(ip);
  const base = ipv4ToNumber(network);
  if (address === null || base === null) return false;
  const bits = bitsText === undefined ? 32 : Number(bitsText);
  if (!Number.isInteger(bits) || bits < 0 || bits > 32) return false;
  const size = 2 ** (32 - bits);
  return Math.floor(address / size) === Math.floor(base / size);
}

exports.onExecuteCredentialsExchange = async (event, api) => {
  const configured = event.client.metadata && event.client.metadata.ip_allowlist;
  if (!configured) return;

  const entries = configured
    .split(",")
    .map((entry) => entry.trim())
    .filter(Boolean);
  const ip = event.request.ip;

  if (!entries.some((entry) => matches(ip, entry))) {
    console.log(`refused ${event.client.client_id}: ${ip} is outside ${entries.join(" ")}`);
    api.access.deny("invalid_request", `Token requests for ${event.client.name} are not accepted from ${ip}.`);
    return;
  }

  console.log(`${event.client.client_id} called from allowlisted address ${ip}`);
};
