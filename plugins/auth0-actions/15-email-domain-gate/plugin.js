/**
 * Email-domain gate per application (Post Login).
 *
 * Some applications are only for one company and its partners. Such an
 * application lists the accepted email domains in its metadata,
 * `allowed_email_domains` (comma-separated). A user whose email address is at
 * another domain is refused; applications without the key accept everyone.
 * Domains compare case-insensitively and must match exactly, so
 * "example.com" does not let in "mail.example.com".
 */
exports.onExecutePostLogin = async (event, api) => {
  const setting = event.client.metadata && event.client.metadata.allowed_email_domains;
  if (!setting) return;

  const allowed = setting
    .split(",")
    .map((domain) => domain.trim().toLowerCase())
    .filter(Boolean);
  const email = (event.user.email || "").toLowerCase();
  const domain = email.slice(email.lastIndexOf("@") + 1);

  if (!email.includes("@") || !allowed.includes(domain)) {
    console.log(`${event.client.client_id}: refused ${event.user.user_id} (domain ${domain || "none"})`);
    api.access.deny(`${event.client.name} is only available to accounts at ${allowed.join(" or ")}.`);
    return;
  }

  console.log(`${event.client.client_id}: ${domain} accepted`);
};
