// The component's job queue (jobs.js) under the facade: async stage
// functions settle before the call returns. Each test file runs in its own
// process, so installing jobs.js's Promise here leaves the other files alone.

import assert from "node:assert/strict";
import { test } from "node:test";

import { drain } from "../src/jobs.js";
import { wrap } from "../src/index.js";
import { mockCache, mockHost } from "../src/testing.js";

const event = () => ({
  toJson: () =>
    JSON.stringify({
      client: { id: "acme", name: "ACME", app_type: "machine", metadata: { tier: "gold" } },
      api: { identifier: "https://orders.example.com", name: "Orders", scopes: ["read:orders"], metadata: {} },
      user: null,
      request: { ip: "127.0.0.1", user_agent: null, hostname: "issuer", method: "POST", params: [] },
      transaction: {
        id: "jti-1",
        grant_type: "client_credentials",
        requested_scopes: [],
        granted_scopes: [],
        redirect_uri: null,
        requested_audience: null,
      },
      access_token: { claims: {}, scopes: ["read:orders"] },
      id_token: null,
    }),
});

function run(onExecuteCredentialsExchange, cache = mockCache()) {
  const host = mockHost();
  const { onCredentialsExchange } = wrap({ onExecuteCredentialsExchange }, host, { cache, drain });
  return { result: () => onCredentialsExchange(event()), host };
}

const claims = (changes) => Object.fromEntries(changes.accessTokenClaims.map(([name, value]) => [name, value.val]));

test("Promise is the job queue's, and queueMicrotask feeds the same queue", () => {
  assert.equal(typeof Promise._immediateFn, "function", "promise-polyfill's Promise is installed");
  const order = [];
  Promise.resolve().then(() => order.push("then"));
  queueMicrotask(() => order.push("microtask"));
  order.push("sync");
  drain();
  assert.deepEqual(order, ["sync", "then", "microtask"]);
});

test("an async Action with awaits, Promise.all and then-chains settles before the call returns", () => {
  const helper = (value) => Promise.resolve(value).then((v) => `${v}!`);
  const { result } = run((event, api) => {
    // What esbuild makes of `async (event, api) => { … await … }`.
    return Promise.all([helper("a"), helper("b")])
      .then(([a, b]) => {
        api.accessToken.setCustomClaim("pair", `${a}${b}`);
        return new Promise((resolve) => queueMicrotask(() => resolve(event.client.metadata.tier)));
      })
      .then((tier) => void api.accessToken.setCustomClaim("tier", tier));
  });
  assert.deepEqual(claims(result()), { pair: "a!b!", tier: "gold" });
});

test("a rejected promise fails the call with its error, logged", () => {
  const failure = new Error("upstream said no");
  const { result, host } = run(() => Promise.resolve().then(() => Promise.reject(failure)));
  assert.throws(result, (thrown) => thrown === failure);
  assert.match(host.logs[0].message, /^onExecuteCredentialsExchange failed: Error: upstream said no/);
});

test("a promise that can never settle fails the call, saying why", () => {
  const { result } = run(() => new Promise(() => {}));
  assert.throws(result, { message: /returned a Promise that never settled: it waits for something/ });
});

test("a denial made after an await is the call's denial", () => {
  const { result } = run((_, api) => Promise.resolve().then(() => api.access.deny("invalid_scope", "no")));
  assert.throws(result, (denial) => denial.code === "invalid-scope" && denial.description === "no");
});

test("api.cache reads back what an earlier call set, Auth0's way", () => {
  let now = 1_000_000;
  const cache = mockCache({ now: () => now });
  const first = run((_, api) => {
    assert.equal(api.cache.get("k"), undefined);
    assert.deepEqual(api.cache.set("k", "v", { ttl: 60_000 }), {
      type: "success",
      record: { value: "v", expires_at: 1_060_000 },
    });
  }, cache);
  first.result();
  const second = run((_, api) => {
    assert.deepEqual(api.cache.get("k"), { value: "v", expires_at: 1_060_000 });
    const refused = api.cache.set("big", "x".repeat(5000));
    assert.equal(refused.type, "error");
    assert.equal(refused.code, "refused");
    assert.match(refused.message, /at most 4096/);
    assert.throws(() => api.cache.set("k", { not: "a string" }), /api\.cache\.set: the value must be a string/);
    assert.deepEqual(api.cache.delete("k"), { type: "success", record: { value: "v", expires_at: 1_060_000 } });
    assert.equal(api.cache.get("k"), undefined);
  }, cache);
  second.result();
  assert.match(second.host.logs[0].message, /^api\.cache\.set\("big"\) stored nothing: the value has 5000 bytes/);
  cache.set("t", "v", 10);
  now += 11;
  assert.equal(cache.get("t"), undefined, "an entry expires after its time to live");
});
