// The facade: the host's event in (a resource read through toJson), WIT
// changes out (or a denial thrown, or a trap).

import assert from "node:assert/strict";
import { test } from "node:test";

import { createConsole, formatLog, wrap } from "../src/index.js";
import { mockHost } from "../src/testing.js";

// The event as the host lends it: a `tessera:plugin@0.2.0` `event` resource,
// read here through `toJson()` only (plugin-sdk/event.schema.json).
const lent = (json) => ({ toJson: () => JSON.stringify(json) });
const hostClient = () => ({
  id: "acme",
  name: "ACME",
  app_type: "regular_web",
  metadata: { partner: "acme", limits: { rps: 5 }, seats: 12 },
});
const hostApi = () => ({
  identifier: "https://orders.example.com",
  name: "Orders",
  scopes: ["read:orders", "write:orders"],
  metadata: { owner: "team" },
});
const hostRequest = () => ({
  ip: "127.0.0.1",
  user_agent: "curl",
  hostname: "issuer",
  method: "POST",
  params: [
    ["grant_type", "client_credentials"],
    ["scope", "read:orders"],
    ["scope", "ignored"],
    ["__proto__", "not a prototype"],
  ],
});
const hostTransaction = () => ({
  id: "jti-1",
  grant_type: "client_credentials",
  requested_scopes: ["read:orders"],
  granted_scopes: ["read:orders"],
  redirect_uri: null,
  requested_audience: "https://orders.example.com",
});
const exchangeEvent = () =>
  lent({
    client: hostClient(),
    api: hostApi(),
    user: null,
    request: hostRequest(),
    transaction: hostTransaction(),
    access_token: { claims: { x: 1 }, scopes: ["read:orders"] },
    id_token: null,
  });
const authorizeEvent = () =>
  lent({
    client: hostClient(),
    api: null,
    user: {
      id: "user-1",
      email: "ada@example.com",
      email_verified: true,
      name: null,
      app_metadata: { roles: ["admin"] },
      user_metadata: { theme: "dark" },
    },
    request: hostRequest(),
    transaction: { ...hostTransaction(), grant_type: "authorization_code", redirect_uri: "https://app/cb" },
    access_token: { claims: {}, scopes: [] },
    id_token: { claims: { n: null }, scopes: [] },
  });
const noChanges = { accessTokenClaims: [], idTokenClaims: [], addScopes: [], removeScopes: [] };

/** Wraps `plugin` with a recording host; returns the exports and the host. */
function wrapped(plugin, options) {
  const host = mockHost(options);
  return { ...wrap(plugin, host), host };
}

test("credentials-exchange events convert field by field, with Auth0's aliases", () => {
  let seen;
  const { onCredentialsExchange } = wrapped({ onCredentialsExchange: (event) => void (seen = event) });
  assert.deepEqual(onCredentialsExchange(exchangeEvent()), noChanges);

  assert.equal(seen.client.id, "acme");
  assert.equal(seen.client.client_id, "acme");
  assert.equal(seen.client.app_type, "regular_web");
  assert.deepEqual(seen.client.metadata, { partner: "acme", limits: { rps: 5 }, seats: 12 });
  assert.equal(seen.api.identifier, "https://orders.example.com");
  assert.equal(seen.resource_server, seen.api);
  assert.deepEqual(seen.api.scopes, ["read:orders", "write:orders"]);
  assert.deepEqual(seen.api.metadata, { owner: "team" });
  assert.equal(seen.request.user_agent, "curl");
  assert.deepEqual(
    { ...seen.request.params },
    { grant_type: "client_credentials", scope: "read:orders", ["__proto__"]: "not a prototype" },
    "first value wins",
  );
  assert.equal(Object.getPrototypeOf(seen.request.params), Object.prototype, "a parameter never sets the prototype");
  assert.equal(seen.transaction.id, "jti-1");
  assert.equal(seen.transaction.grant_type, "client_credentials");
  assert.equal(seen.transaction.redirect_uri, null);
  assert.equal(seen.transaction.requested_audience, "https://orders.example.com");
  assert.deepEqual(seen.access_token, { claims: { x: 1 }, scopes: ["read:orders"] });
  assert.equal(seen.user, undefined);
  // Auth0's names: the token so far, the POSTed form, the tenant.
  assert.deepEqual(seen.accessToken, { customClaims: { x: 1 }, scope: ["read:orders"] });
  assert.equal(seen.request.body, seen.request.params);
  assert.deepEqual(seen.request.query, {});
  assert.deepEqual(seen.tenant, { id: "issuer" });
  assert.ok(Object.isFrozen(seen.accessToken.customClaims));
});

test("authorize events convert the user, an absent API and the ID token", () => {
  let seen;
  const { onAuthorize, onCredentialsExchange } = wrapped({ onAuthorize: (event) => void (seen = event) });
  assert.equal(onCredentialsExchange, undefined, "only the stages the plugin defines are exported");
  onAuthorize(authorizeEvent());

  assert.equal(seen.api, null);
  assert.equal(seen.resource_server, null);
  assert.deepEqual(seen.request.query, {}, "a POSTed authorize request has a body, not a query");
  assert.equal(seen.user.id, "user-1");
  assert.equal(seen.user.user_id, "user-1");
  assert.equal(seen.user.email_verified, true);
  assert.equal(seen.user.name, null);
  assert.deepEqual(seen.user.app_metadata, { roles: ["admin"] });
  assert.deepEqual(seen.user.user_metadata, { theme: "dark" });
  assert.deepEqual(seen.id_token, { claims: { n: null } });
  assert.equal(seen.transaction.redirect_uri, "https://app/cb");
});

test("the event is read-only", () => {
  const { onCredentialsExchange } = wrapped({
    onCredentialsExchange(event) {
      assert.throws(() => (event.client.name = "x"), TypeError);
      assert.throws(() => event.api.scopes.push("x"), TypeError);
      assert.throws(() => (event.client.metadata.limits.rps = 1), TypeError);
      assert.throws(() => (event.secrets.TOKEN = "x"), TypeError);
      assert.throws(() => (event.config = {}), TypeError);
    },
  });
  onCredentialsExchange(exchangeEvent());
});

test("Auth0's function names are aliases of the stages", () => {
  const calls = [];
  const { onCredentialsExchange, onAuthorize } = wrapped({
    onExecuteCredentialsExchange: () => void calls.push("exchange"),
    onExecutePostLogin: () => void calls.push("post-login"),
  });
  onCredentialsExchange(exchangeEvent());
  onAuthorize(authorizeEvent());
  assert.deepEqual(calls, ["exchange", "post-login"]);
  assert.throws(() => wrap({ onAuthorize() {}, onExecutePostLogin() {} }, mockHost()), {
    message: "the plugin defines both onAuthorize and onExecutePostLogin; keep one",
  });
});

test("changes become the WIT record; a removal is null", () => {
  const { onAuthorize } = wrapped({
    onAuthorize(event, api) {
      api.accessToken
        .setCustomClaim("a", 1)
        .accessToken.setCustomClaim("b", { x: [1] })
        .accessToken.setCustomClaim("a", ["r"])
        .accessToken.removeCustomClaim("old")
        .accessToken.addScope("s")
        .accessToken.removeScope("t")
        .accessToken.removeScope("s")
        .accessToken.addScope("t")
        .accessToken.addScope("t");
      api.idToken.setCustomClaim("email", event.user.email).idToken.removeCustomClaim("nick");
    },
  });
  assert.deepEqual(onAuthorize(authorizeEvent()), {
    accessTokenClaims: [
      ["a", { tag: "text-list", val: ["r"] }],
      ["b", { tag: "json", val: '{"x":[1]}' }],
      ["old", { tag: "null" }],
    ],
    idTokenClaims: [
      ["email", { tag: "text", val: "ada@example.com" }],
      ["nick", { tag: "null" }],
    ],
    addScopes: ["t"],
    removeScopes: ["s"],
  });
});

test("a denial is thrown as the WIT record and drops the changes", () => {
  const deny = (...args) =>
    wrapped({
      onCredentialsExchange(event, api) {
        api.accessToken.setCustomClaim("a", 1);
        api.access.deny(...args);
        api.access.deny("invalid_scope", "a second denial is ignored");
        api.accessToken.setCustomClaim("b", 2);
      },
    }).onCredentialsExchange(exchangeEvent());

  assert.throws(
    () => deny("not a partner"),
    (thrown) => {
      assert.deepEqual(thrown, { code: "access-denied", description: "not a partner" });
      return true;
    },
  );
  for (const [code, wit] of [
    ["access_denied", "access-denied"],
    ["invalid_scope", "invalid-scope"],
    ["invalid_request", "invalid-request"],
    ["unauthorized_client", "unauthorized-client"],
    ["invalid_target", "invalid-target"],
    ["invalid-target", "invalid-target"],
  ]) {
    assert.throws(
      () => deny(code, "why"),
      (thrown) => {
        assert.deepEqual(thrown, { code: wit, description: "why" });
        return true;
      },
    );
  }
});

test("an unknown deny code or a missing description is an error (a trap)", () => {
  assert.throws(() => deny("temporarily_unavailable", "x"), {
    message: /^api\.access\.deny: unknown code "temporarily_unavailable"; use access_denied, invalid_scope/,
  });
  assert.throws(() => deny("server_error", "upstream down"), {
    message: "onCredentialsExchange denied with server_error: upstream down",
  });
  assert.throws(() => deny(), { name: "TypeError", message: /the description must be a string/ });

  function deny(...args) {
    const { onCredentialsExchange } = wrapped({ onCredentialsExchange: (_, api) => void api.access.deny(...args) });
    return onCredentialsExchange(exchangeEvent());
  }
});

test("errors are logged with their stack and rethrown as errors", () => {
  const failure = new Error("boom");
  const { onCredentialsExchange, host } = wrapped({
    onCredentialsExchange() {
      throw failure;
    },
  });
  assert.throws(
    () => onCredentialsExchange(exchangeEvent()),
    (thrown) => thrown === failure,
  );
  assert.equal(host.logs.length, 1);
  assert.equal(host.logs[0].level, "error");
  assert.match(host.logs[0].message, /^onCredentialsExchange failed: Error: boom\n\s+at /);

  const thrower = (value) =>
    wrapped({
      onCredentialsExchange: () => {
        throw value;
      },
    }).onCredentialsExchange;
  assert.throws(
    () => thrower({ code: "access-denied", description: "x" })(exchangeEvent()),
    {
      name: "Error",
      message: 'onCredentialsExchange threw {"code":"access-denied","description":"x"}',
    },
    "a thrown object must not pass for a denial",
  );
  assert.throws(() => thrower("text")(exchangeEvent()), { message: 'onCredentialsExchange threw "text"' });
});

test("bad claims fail where they are set", () => {
  const run = (fn) => wrapped({ onCredentialsExchange: (_, api) => fn(api) }).onCredentialsExchange(exchangeEvent());
  assert.throws(() => run((api) => api.accessToken.setCustomClaim("n", NaN)), {
    message: 'api.accessToken.setCustomClaim("n"): NaN is not a finite number',
  });
  assert.throws(() => run((api) => api.idToken.setCustomClaim("", 1)), {
    message: /the claim name must be a non-empty string/,
  });
  assert.throws(() => run((api) => api.accessToken.addScope(3)), {
    message: /the scope must be a non-empty string, got 3/,
  });
});

test("a returned promise without a job queue to settle it fails clearly", async () => {
  const { onCredentialsExchange, host } = wrapped({ onExecuteCredentialsExchange: async () => {} });
  assert.throws(() => onCredentialsExchange(exchangeEvent()), {
    message: /^onExecuteCredentialsExchange returned a Promise, but this component has no job queue to settle it/,
  });
  assert.equal(host.logs[0].level, "error");

  const rejected = wrapped({ onCredentialsExchange: () => Promise.reject(new Error("later")) });
  assert.throws(() => rejected.onCredentialsExchange(exchangeEvent()), /returned a Promise/);
  await new Promise((resolve) => setImmediate(resolve)); // the rejection is handled: no crash
});

test("Auth0 api members Tessera does not have throw with what to use instead", () => {
  const { onExecutePostLogin } = { onExecutePostLogin: (_, api) => api.multifactor.enable("any") };
  const { onAuthorize } = wrapped({ onExecutePostLogin });
  assert.throws(() => onAuthorize(authorizeEvent()), {
    message: /^api\.multifactor is not available in Tessera: Tessera's sign-in has no multi-factor step/,
  });
  const unknown = wrapped({ onAuthorize: (_, api) => assert.equal(api.somethingElse, undefined) });
  unknown.onAuthorize(authorizeEvent());
});

test("secrets are looked up one by one and never listed", () => {
  const { onCredentialsExchange } = wrapped(
    {
      onCredentialsExchange({ secrets }) {
        assert.equal(secrets.TOKEN, "s3cret");
        assert.equal(secrets.get("TOKEN"), "s3cret");
        assert.equal(secrets.MISSING, undefined);
        assert.equal(secrets.get("MISSING"), undefined);
        assert.ok("TOKEN" in secrets);
        assert.ok(!("MISSING" in secrets));
        assert.deepEqual(Object.keys(secrets), []);
        assert.equal(JSON.stringify(secrets), "{}");
      },
    },
    { secrets: { TOKEN: "s3cret" } },
  );
  onCredentialsExchange(exchangeEvent());
});

test("config is raw text, and json() parses it or falls back to the text", () => {
  const { onCredentialsExchange } = wrapped(
    {
      onCredentialsExchange({ config }) {
        assert.equal(config.namespace, "https://claims.example.com/");
        assert.equal(config.get("keys"), '["a","b"]', "non-string values arrive as JSON text");
        assert.deepEqual(config.json("keys"), ["a", "b"]);
        assert.equal(config.json("limit"), 10);
        assert.equal(config.json("csv"), "a, b", "not JSON: the raw string");
        assert.equal(config.json("missing"), undefined);
        assert.equal(config.missing, undefined);
        assert.ok("csv" in config);
      },
    },
    { config: { namespace: "https://claims.example.com/", keys: ["a", "b"], limit: 10, csv: "a, b" } },
  );
  onCredentialsExchange(exchangeEvent());
});

test("api.log and console write to the host log at their levels", () => {
  const { onCredentialsExchange, host } = wrapped({
    onCredentialsExchange(event, api) {
      api.log.trace("t");
      api.log.debug("d", 1, { a: [true] });
      api.log.info("i");
      api.log.warn("w");
      api.log.error("e", new Error("boom"));
    },
  });
  onCredentialsExchange(exchangeEvent());
  assert.deepEqual(
    host.logs.map(({ level }) => level),
    ["trace", "debug", "info", "warn", "error"],
  );
  assert.equal(host.logs[1].message, 'd 1 {"a":[true]}');
  assert.match(host.logs[4].message, /^e Error: boom\n/);

  const lines = [];
  const console = createConsole((level, message) => lines.push([level, message]));
  console.log("a", null, undefined);
  console.debug("b");
  console.warn("c");
  console.error("d");
  assert.deepEqual(lines, [
    ["info", "a null undefined"],
    ["debug", "b"],
    ["warn", "c"],
    ["error", "d"],
  ]);
  assert.equal(formatLog([10n, () => 1]), "10 () => 1");
});
