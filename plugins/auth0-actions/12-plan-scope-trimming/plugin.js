/**
 * Trim Reports API scopes to the customer's plan (Post Login).
 *
 * The reporting app requests every scope it knows about; what a user actually
 * gets depends on the subscription plan in `app_metadata.plan`. Scopes of the
 * Reports API that the plan does not include are removed from the access
 * token (OpenID scopes such as `openid` and `profile` are not touched). An
 * unknown or missing plan is treated as the free plan.
 *
 * Written with a promise chain: the plan lookup returns a promise, as a call
 * to a billing service would.
 */
const REPORTS_API = "https://reports.example.com";

const PLAN_SCOPES = {
  free: ["read:reports"],
  team: ["read:reports", "write:reports"],
  enterprise: ["read:reports", "write:reports", "admin:reports"],
};

function lookupPlan(user) {
  const plan = (user.app_metadata && user.app_metadata.plan) || "free";
  return Promise.resolve(Object.prototype.hasOwnProperty.call(PLAN_SCOPES, plan) ? plan : "free");
}

exports.onExecutePostLogin = async (event, api) => {
  if (!event.resource_server || event.resource_server.identifier !== REPORTS_API) return;

  return lookupPlan(event.user)
    .then((plan) => {
      console.log(`${event.user.user_id} is on the ${plan} plan`);
      return PLAN_SCOPES[plan];
    })
    .then((allowed) => {
      const requested = event.transaction.requested_scopes || [];
      const dropped = requested.filter((scope) => scope.endsWith(":reports") && !allowed.includes(scope));
      dropped.forEach((scope) => api.accessToken.removeScope(scope));
      return dropped;
    })
    .then((dropped) => {
      console.log(`removed scopes: ${dropped.length ? dropped.join(" ") : "none"}`);
    });
};
