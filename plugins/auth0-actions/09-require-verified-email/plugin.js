/**
 * Verified email required (Post Login).
 *
 * The customer portal sends invoices and password resets by email, so it
 * only lets in people whose address has been confirmed. An unverified user is
 * turned away with a message telling them what to do; a verified one passes
 * with nothing changed.
 */
exports.onExecutePostLogin = async (event, api) => {
  if (event.user.email_verified) {
    return;
  }

  console.log(`blocked ${event.user.user_id}: ${event.user.email} is not verified (${event.client.name})`);
  api.access.deny(`Please verify ${event.user.email} using the link we emailed you, then sign in to ${event.client.name} again.`);
};
