/**
 * Sign-in denylist by network (Post Login).
 *
 * Security keeps a list of IPv4 addresses and ranges that should never sign
 * in (abuse sources, retired office ranges) in the Action secret
 * `BLOCKED_NETWORKS`, comma-separated ("203.0.113.0/24,198.51.100.66").
 * A sign-in from a listed network is refused; any other passes unchanged.
 * With no secret configured, nothing is blocked.
 */

function toInt(ip) {
  const octets = ip.split(".").map(Number);
  if (octets.length !== 4 || octets.some((n) => !Number.isInteger(n) || n < 0 || n > 255)) {
    return null;
  }
  return ((octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]) >>> 0;
}

function inNetwork(ip, network) {
  const [base, prefix = "32"] = network.split("/");
  const a = toInt(ip);
  const b = toInt(base);
  const bits = Number(prefix);
  if (a === null || b === null || !(bits >= 0 && bits <= 32)) return false;
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return ((a & mask) >>> 0) === ((b & mask) >>> 0);
}

exports.onExecutePostLogin = async (event, api) => {
  const list = (event.secrets.BLOCKED_NETWORKS || "")
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item.length > 0);

  const ip = event.request.ip;
  const hit = list.find((network) => inNetwork(ip, network));
  if (hit) {
    console.log(`sign-in by ${event.user.user_id} from ${ip} refused (matches ${hit})`);
    api.access.deny("Sign-in from your current network is not allowed.");
    return;
  }

  console.log(`${ip} is not on the denylist (${list.length} entries checked)`);
};
