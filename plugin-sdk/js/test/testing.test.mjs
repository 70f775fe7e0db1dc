// The test doubles that plugin authors use.

import assert from "node:assert/strict";
import { test } from "node:test";

import { mockApi, mockAuthorizeEvent, mockEvent, mockHost } from "../src/testing.js";

test("mockEvent has defaults and replaces keys section by section", () => {
  const metadata = { tier: "gold" };
  const event = mockEvent({ client: { id: "acme", metadata }, request: { params: { scope: "read" } } });

  assert.equal(event.client.id, "acme");
  assert.equal(event.client.client_id, "acme");
  assert.equal(event.client.name, "Test client");
  assert.equal(event.client.app_type, "machine");
  assert.deepEqual(event.client.metadata, { tier: "gold" });
  assert.equal(event.api.identifier, "https://api.example.com");
  assert.equal(event.resource_server, event.api);
  assert.equal(event.request.method, "POST");
  assert.deepEqual(event.request.params, { scope: "read" });
  assert.equal(event.transaction.grant_type, "client_credentials");
  assert.equal(event.transaction.requested_audience, "https://api.example.com");
  assert.deepEqual(event.access_token, { claims: {}, scopes: [] });
  assert.ok(Object.isFrozen(event.client.metadata));
  assert.ok(!Object.isFrozen(metadata), "the caller's objects are copied, not frozen");
});

test("mockAuthorizeEvent has a user, an ID token and no API unless given", () => {
  const event = mockAuthorizeEvent({ user: { id: "user-1", email: "ada@example.com" } });
  assert.equal(event.user.user_id, "user-1");
  assert.equal(event.user.email, "ada@example.com");
  assert.equal(event.user.email_verified, false);
  assert.equal(event.api, null);
  assert.equal(event.transaction.grant_type, "authorization_code");
  assert.equal(event.transaction.requested_audience, null);
  assert.deepEqual(event.id_token, { claims: {} });

  const withApi = mockAuthorizeEvent({ api: { identifier: "https://orders" } });
  assert.equal(withApi.api.name, "Test API");
  assert.equal(withApi.transaction.requested_audience, "https://orders");
});

test("mock events refuse unknown keys and app types", () => {
  assert.throws(() => mockEvent({ client: { appType: "spa" } }), {
    message: 'mockEvent: client: unknown key "appType" (expected id, name, app_type, metadata)',
  });
  assert.throws(() => mockEvent({ user: {} }), /mockEvent: unknown key "user"/);
  assert.throws(() => mockEvent({ api: null }), /mockEvent: api: expected an object/);
  assert.throws(() => mockEvent({ client: { app_type: "regular-web" } }), /app_type must be one of spa, regular_web/);
});

test("config and secrets back event.config and event.secrets like the host", () => {
  const event = mockEvent({ config: { ns: "https://c/", keys: ["a"], n: 3 }, secrets: { TOKEN: "t" } });
  assert.equal(event.config.ns, "https://c/");
  assert.equal(event.config.keys, '["a"]');
  assert.deepEqual(event.config.json("keys"), ["a"]);
  assert.equal(event.config.n, "3");
  assert.equal(event.secrets.TOKEN, "t");
  assert.equal(event.secrets.OTHER, undefined);

  const host = mockHost({ config: { t: { k: true } } });
  assert.equal(host.config("t"), '{"k":true}');
  assert.equal(host.config("missing"), null);
  assert.equal(host.secret("missing"), null);
});

test("mockApi records changes, the denial and logs", () => {
  const api = mockApi();
  api.accessToken.setCustomClaim("a", { x: 1 }).accessToken.removeCustomClaim("b").accessToken.removeScope("w");
  api.idToken.setCustomClaim("c", new Date(0));
  api.log.info("hello", 1);
  assert.equal(api.denial, null);
  api.access.deny("invalid_scope", "no");

  assert.deepEqual(api.changes, {
    accessTokenClaims: { a: { x: 1 }, b: null },
    idTokenClaims: { c: "1970-01-01T00:00:00.000Z" },
    addScopes: [],
    removeScopes: ["w"],
  });
  assert.deepEqual(api.denial, { code: "invalid_scope", description: "no" });
  assert.deepEqual(api.logs, [{ level: "info", message: "hello 1" }]);
  assert.throws(() => api.accessToken.setCustomClaim("bad", undefined), /undefined is not a JSON value/);
});
