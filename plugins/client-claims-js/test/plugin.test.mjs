// Unit tests of the client-claims plugin, run natively: `npm test`.
// They mirror the Rust plugin's tests (plugins/client-claims/src/lib.rs).

import assert from "node:assert/strict";
import { test } from "node:test";

import { onAuthorize, onCredentialsExchange } from "../plugin.js";
import { mockApi, mockAuthorizeEvent, mockEvent } from "../tessera/testing.js";

const NS = "https://claims.example.com/";

const client = () => ({
  id: "acme-sync",
  name: "ACME order sync",
  app_type: "machine",
  metadata: { partner: "acme", tier: "gold", limits: { rps: 10, regions: ["eu"] } },
});

const exchange = (config, clientOverrides = client()) =>
  mockEvent({ client: clientOverrides, api: { identifier: "https://orders.example.com", name: "Orders" }, config });

/** Runs the credentials-exchange stage; returns the claims set and the api. */
function run(config) {
  const api = mockApi();
  onCredentialsExchange(exchange(config), api);
  assert.equal(api.denial, null);
  return { claims: api.changes.accessTokenClaims, api };
}

test("sets name, app type and every metadata key by default", () => {
  const { claims, api } = run({ namespace: NS });

  assert.deepEqual(claims, {
    [`${NS}limits`]: { rps: 10, regions: ["eu"] },
    [`${NS}partner`]: "acme",
    [`${NS}tier`]: "gold",
    [`${NS}client_name`]: "ACME order sync",
    [`${NS}client_app_type`]: "machine",
  });
  assert.deepEqual(api.changes.idTokenClaims, {});
  assert.deepEqual(api.changes.addScopes, []);
  assert.deepEqual(api.changes.removeScopes, []);
});

test("metadata_keys as a JSON list selects keys and skips absent ones", () => {
  const { claims } = run({ namespace: NS, metadata_keys: ["tier", "region"] });

  assert.equal(claims[`${NS}tier`], "gold");
  assert.equal(claims[`${NS}partner`], undefined);
  assert.equal(claims[`${NS}region`], undefined);
  assert.equal(Object.keys(claims).length, 3);
});

test("metadata_keys as a comma-separated string", () => {
  const { claims } = run({ namespace: NS, metadata_keys: " partner , limits,," });

  assert.equal(claims[`${NS}partner`], "acme");
  assert.equal(claims[`${NS}limits`].rps, 10);
  assert.equal(claims[`${NS}tier`], undefined);
});

test("an empty list copies no metadata", () => {
  const { claims } = run({ namespace: NS, metadata_keys: [] });

  assert.equal(Object.keys(claims).length, 2);
});

test("logs one debug line", () => {
  const { api } = run({ namespace: NS });

  assert.equal(api.logs.length, 1);
  assert.equal(api.logs[0].level, "debug");
  assert.match(api.logs[0].message, /"acme-sync"/);
  assert.match(api.logs[0].message, /3 metadata claim\(s\) \[limits, partner, tier\]/);
});

test("metadata cannot shadow the built-in claims", () => {
  const sneaky = { id: "c", name: "Real name", app_type: "spa", metadata: { client_name: "Fake" } };
  const api = mockApi();
  onCredentialsExchange(exchange({ namespace: NS }, sneaky), api);

  assert.equal(api.changes.accessTokenClaims[`${NS}client_name`], "Real name");
  assert.equal(api.changes.accessTokenClaims[`${NS}client_app_type`], "spa");
  assert.ok(api.logs.some(({ level }) => level === "warn"));
});

test("authorize sets the same access-token claims", () => {
  const api = mockApi();
  onAuthorize(mockAuthorizeEvent({ client: client(), user: { id: "user-1" }, config: { namespace: NS } }), api);

  assert.deepEqual(api.changes, run({ namespace: NS }).api.changes);
});

test("a missing namespace throws", () => {
  assert.throws(() => run({}), { message: 'client-claims: config key "namespace" is required' });
});

test("an empty namespace throws", () => {
  assert.throws(() => run({ namespace: "" }), { message: 'client-claims: config key "namespace" is required' });
});

test("a malformed metadata_keys throws", () => {
  assert.throws(() => run({ namespace: NS, metadata_keys: ["tier", 3] }), {
    message: /config key "metadata_keys" must be a list of strings/,
  });
});
