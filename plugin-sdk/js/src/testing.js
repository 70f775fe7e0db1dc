/**
 * @file Test doubles for Tessera plugins, for native tests under `node --test`.
 *
 * A plugin's functions take plain data and an `api` object, so they can be
 * called directly, with no WebAssembly:
 *
 * ```js
 * import { test } from "node:test";
 * import assert from "node:assert/strict";
 * import { mockEvent, mockApi } from "../tessera/testing.js";
 * import { onCredentialsExchange } from "../plugin.js";
 *
 * test("sets the tier", () => {
 *   const event = mockEvent({ client: { metadata: { tier: "gold" } }, config: { claim: "tier" } });
 *   const api = mockApi();
 *   onCredentialsExchange(event, api);
 *   assert.deepEqual(api.changes.accessTokenClaims, { tier: "gold" });
 * });
 * ```
 *
 * The events are built by the same code as in the component, and the mock
 * `api` is the real one with a recording host, so values go through the same
 * conversion (and fail the same way) as they would in Tessera.
 */

import { createApi, fromWitValue, makeEvent } from "./index.js";

const APP_TYPES = ["spa", "regular_web", "native", "machine"];

const client = () => ({ id: "test-client", name: "Test client", app_type: "machine", metadata: {} });
const resourceServer = () => ({ identifier: "https://api.example.com", name: "Test API", scopes: [], metadata: {} });
const user = () => ({
  id: "test-user",
  email: null,
  email_verified: false,
  name: null,
  app_metadata: {},
  user_metadata: {},
});
const request = (method) => ({ ip: "127.0.0.1", user_agent: null, hostname: "localhost", method, params: {} });
const transaction = (grantType) => ({
  id: "test-transaction",
  grant_type: grantType,
  requested_scopes: [],
  granted_scopes: [],
  redirect_uri: null,
  requested_audience: null,
});
const token = () => ({ claims: {}, scopes: [] });

const isPlainObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);

/** Throws if `overrides` is not an object or has a key that `base` lacks. */
function checkKeys(base, overrides, where) {
  if (!isPlainObject(overrides)) throw new TypeError(`${where}: expected an object, got ${JSON.stringify(overrides)}`);
  for (const key of Object.keys(overrides)) {
    if (!Object.hasOwn(base, key)) {
      throw new TypeError(`${where}: unknown key "${key}" (expected ${Object.keys(base).join(", ")})`);
    }
  }
}

/**
 * Builds the event from per-section default factories and overrides; a
 * section's given keys replace its defaults. A `null` default (the API of an
 * authorize event) stays `null` unless the section is given.
 */
function build(defaults, overrides, where) {
  const { config = {}, secrets = {}, ...sections } = overrides;
  checkKeys(defaults, sections, where);
  const data = {};
  for (const [name, make] of Object.entries(defaults)) {
    const given = sections[name];
    if (make === null && (given === undefined || given === null)) {
      data[name] = null;
      continue;
    }
    const base = (make ?? resourceServer)();
    if (given !== undefined) checkKeys(base, given, `${where}: ${name}`);
    data[name] = { ...base, ...given };
  }
  if (!APP_TYPES.includes(data.client.app_type)) {
    throw new TypeError(`${where}: client.app_type must be one of ${APP_TYPES.join(", ")}`);
  }
  if (data.api !== null && !Object.hasOwn(sections.transaction ?? {}, "requested_audience")) {
    data.transaction.requested_audience = data.api.identifier;
  }
  // A copy, so that freezing the event leaves the caller's objects alone.
  return makeEvent(structuredClone(data), mockHost({ config, secrets }));
}

/**
 * A host that answers `config` and `secret` from plain objects and records
 * log lines. Config values that are not strings are passed as JSON text, as
 * Tessera passes non-string TOML values.
 *
 * @param {{config?: Record<string, unknown>, secrets?: Record<string, string>}} [options]
 * @returns {{log(level: string, message: string): void, config(key: string): string | null,
 *   secret(name: string): string | null, logs: {level: string, message: string}[]}}
 */
export function mockHost({ config = {}, secrets = {} } = {}) {
  const text = (value) => (typeof value === "string" ? value : JSON.stringify(value));
  const logs = [];
  return {
    logs,
    log: (level, message) => void logs.push({ level, message }),
    config: (key) => (Object.hasOwn(config, key) ? text(config[key]) : null),
    secret: (name) => (Object.hasOwn(secrets, name) ? String(secrets[name]) : null),
  };
}

/**
 * A credentials-exchange event, as a plugin receives it in Tessera.
 *
 * Every section has defaults (a machine client `test-client`, an API
 * `https://api.example.com`, a `client_credentials` POST request, no claims);
 * `overrides` replaces keys section by section, e.g.
 * `mockEvent({ client: { metadata: { tier: "gold" } } })`. `config` and
 * `secrets` are plain objects backing `event.config` and `event.secrets`.
 * Unknown keys throw, to catch typos.
 *
 * @param {{client?: object, api?: object, request?: object, transaction?: object,
 *   access_token?: object, config?: Record<string, unknown>, secrets?: Record<string, string>}} [overrides]
 * @returns {object} the frozen event
 */
export function mockEvent(overrides = {}) {
  return build(
    {
      client,
      api: resourceServer,
      request: () => request("POST"),
      transaction: () => transaction("client_credentials"),
      access_token: token,
    },
    overrides,
    "mockEvent",
  );
}

/**
 * An authorize event (a user signed in), as a plugin receives it in Tessera.
 *
 * Like {@link mockEvent}, with a `regular_web` client, a user `test-user`, no
 * API unless `api` is given, an `authorization_code` GET request and an
 * `id_token` section.
 *
 * @param {{client?: object, api?: object | null, user?: object, request?: object, transaction?: object,
 *   access_token?: object, id_token?: object, config?: Record<string, unknown>,
 *   secrets?: Record<string, string>}} [overrides]
 * @returns {object} the frozen event
 */
export function mockAuthorizeEvent(overrides = {}) {
  return build(
    {
      client: () => ({ ...client(), app_type: "regular_web" }),
      api: null,
      user,
      request: () => request("GET"),
      transaction: () => transaction("authorization_code"),
      access_token: token,
      id_token: () => ({ claims: {} }),
    },
    overrides,
    "mockAuthorizeEvent",
  );
}

/**
 * An in-memory stand-in for the plugin's host-side cache
 * (`tessera:cache/store`), with the host's limits: keys up to 512 bytes,
 * values up to 4 KiB, a time to live of 15 minutes by default and a day at
 * most. `entries` is the underlying `Map` of key → `{value, expiresAt}`.
 *
 * @param {{now?: () => number}} [clock] milliseconds since the epoch
 *   (default `Date.now`), to test expiry without waiting
 */
export function mockCache({ now = Date.now } = {}) {
  const entries = new Map();
  const bytes = (text) => new TextEncoder().encode(text).length;
  const live = (key) => {
    const entry = entries.get(key);
    if (entry !== undefined && entry.expiresAt <= now()) entries.delete(key);
    return entries.get(key);
  };
  return {
    entries,
    get: (key) => live(key),
    set(key, value, ttlMs) {
      if (bytes(key) > 512) throw `the key has ${bytes(key)} bytes; at most 512`;
      if (bytes(value) > 4096) throw `the value has ${bytes(value)} bytes; at most 4096`;
      if (ttlMs === 0) throw "the time to live is zero";
      const expiresAt = now() + Math.min(ttlMs ?? 15 * 60 * 1000, 24 * 60 * 60 * 1000);
      entries.set(key, { value, expiresAt });
      return expiresAt;
    },
    delete: (key) => live(key) !== undefined && entries.delete(key),
  };
}

/**
 * The `api` object a plugin receives, recording what the plugin asks for.
 *
 * Besides the real methods it has:
 * - `changes`: `{ accessTokenClaims, idTokenClaims, addScopes, removeScopes }`,
 *   claims as an object of name → value (`null` for a removal), values as
 *   they reach Tessera (e.g. a `Date` becomes its JSON string);
 * - `denial`: `null`, or `{ code, description }` with the code spelled
 *   `access_denied`, `invalid_scope`, ...;
 * - `logs`: the `api.log` lines, as `{ level, message }`;
 * - `cache`: `api.cache`, over an in-memory cache with the host's limits
 *   (pass `{ cache: mockCache() }` to share one across calls).
 *
 * `changes` lists what was recorded even after a denial; in Tessera a denial
 * drops the changes.
 *
 * @returns {object}
 */
export function mockApi({ cache = mockCache() } = {}) {
  const host = mockHost();
  const { api, outcome } = createApi(host, cache);
  const claims = (pairs) => Object.fromEntries(pairs.map(([name, value]) => [name, fromWitValue(value)]));
  Object.defineProperties(api, {
    changes: {
      get() {
        const { changes } = outcome();
        return {
          accessTokenClaims: claims(changes.accessTokenClaims),
          idTokenClaims: claims(changes.idTokenClaims),
          addScopes: changes.addScopes,
          removeScopes: changes.removeScopes,
        };
      },
    },
    denial: {
      get() {
        const { denial } = outcome();
        return denial && { code: denial.code.replaceAll("-", "_"), description: denial.description };
      },
    },
    logs: { value: host.logs },
  });
  return Object.freeze(api);
}
