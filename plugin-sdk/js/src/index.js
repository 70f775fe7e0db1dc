/**
 * @file The Tessera plugin runtime for JavaScript.
 *
 * A plugin author writes `plugin.js`, an ES module exporting
 * `onCredentialsExchange(event, api)` and/or `onAuthorize(event, api)` (or the
 * Auth0 names `onExecuteCredentialsExchange` / `onExecutePostLogin`). The
 * build (`build.mjs`) generates an entry module that calls {@link wrap} to turn
 * those functions into the component's WIT exports (`wit/0.2.0/plugin.wit`,
 * package `tessera:plugin@0.2.0`):
 *
 * - the host's event (a resource lent for the call) is read in one host call,
 *   `event.toJson()`, parsed with the engine's native `JSON.parse`, and
 *   becomes a plain, frozen `event` with snake_case keys, Auth0's aliases,
 *   and lazy `event.secrets` / `event.config`;
 * - an `api` object collects claim and scope changes, or a denial, and
 *   reaches the plugin's host-side cache (`api.cache`, `tessera:cache`);
 * - a function that returns a promise (an `async` one, as Auth0 Actions are)
 *   has its promise settled before the call returns: the build lowers
 *   `async`/`await` to the global `Promise`, which in the component is
 *   `jobs.js`'s, whose queue `run` drains;
 * - the function's outcome becomes the WIT `changes` record (returned) or the
 *   WIT `denial` record (thrown), and an exception becomes a trap.
 *
 * This module has no imports, so it runs unchanged in QuickJS (inside the
 * component) and in Node (the author's native tests, through `testing.js`).
 * Where the engine has no `console` (QuickJS), loading it installs one that
 * writes to the host's log.
 */

/** The stages, the WIT export of each, and the names a plugin may use. */
export const STAGES = Object.freeze([
  Object.freeze({
    world: "credentials-exchange",
    export: "onCredentialsExchange",
    names: Object.freeze(["onCredentialsExchange", "onExecuteCredentialsExchange"]),
  }),
  Object.freeze({
    world: "authorize",
    export: "onAuthorize",
    names: Object.freeze(["onAuthorize", "onExecutePostLogin"]),
  }),
]);

/** The log levels of the host, lowest first. */
export const LEVELS = Object.freeze(["trace", "debug", "info", "warn", "error"]);

/**
 * What a denial with Auth0's `server_error` code does: the call fails (the
 * plugin's `on_error` applies), since a plugin that denies says the request
 * is wrong, not the server.
 */
const SERVER_ERROR = "server_error";

/** Accepted deny codes (OAuth spelling and WIT spelling) to the WIT enum case. */
const DENY_CODES = new Map(
  ["access_denied", "invalid_scope", "invalid_request", "unauthorized_client", "invalid_target"].flatMap((code) => [
    [code, code.replaceAll("_", "-")],
    [code.replaceAll("_", "-"), code.replaceAll("_", "-")],
  ]),
);

// ---------------------------------------------------------------------------
// Values

/**
 * Converts a JavaScript value to the WIT `value` variant.
 *
 * `null` → `null`, booleans → `boolean`, safe integers → `integer`, other
 * finite numbers → `number`, strings → `text`, arrays of only strings →
 * `text-list`, anything else JSON can represent → `json` (JSON text).
 *
 * @param {unknown} value
 * @param {string} [what] what the value is, for error messages
 * @returns {{tag: string, val?: unknown}} the WIT value
 * @throws {TypeError|RangeError} for `undefined`, NaN, infinities, functions,
 *   symbols, BigInts and anything else JSON cannot represent
 */
export function toWitValue(value, what = "value") {
  if (value === null) return { tag: "null" };
  switch (typeof value) {
    case "boolean":
      return { tag: "boolean", val: value };
    case "string":
      return { tag: "text", val: value };
    case "number":
      if (Number.isSafeInteger(value)) return { tag: "integer", val: value };
      if (Number.isFinite(value)) return { tag: "number", val: value };
      throw new RangeError(`${what}: ${value} is not a finite number`);
    case "undefined":
      throw new TypeError(`${what}: undefined is not a JSON value (use null to remove a claim)`);
  }
  if (Array.isArray(value)) {
    const items = Array.from(value);
    if (items.every((item) => typeof item === "string")) return { tag: "text-list", val: items };
  }
  let text;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    throw new TypeError(`${what}: not representable as JSON (${error.message})`);
  }
  if (text === undefined) throw new TypeError(`${what}: a ${typeof value} is not a JSON value`);
  return { tag: "json", val: text };
}

/**
 * Converts a WIT `value` variant to a JavaScript value: the reverse of
 * {@link toWitValue}. JSON text is parsed; text that does not parse stays a
 * string.
 *
 * @param {{tag: string, val?: unknown}} value
 * @returns {unknown}
 */
export function fromWitValue(value) {
  switch (value.tag) {
    case "null":
      return null;
    case "boolean":
    case "text":
      return value.val;
    case "integer":
    case "number":
      return Number(value.val);
    case "text-list":
      return Array.from(value.val);
    case "json":
      try {
        return JSON.parse(value.val);
      } catch {
        return value.val;
      }
    default:
      throw new TypeError(`unknown WIT value case ${JSON.stringify(value.tag)}`);
  }
}

// ---------------------------------------------------------------------------
// Events

/**
 * The host's event as plain event data for `world`: the JSON of
 * `event.toJson()` (its shape: `plugin-sdk/event.schema.json`, generated from
 * the WIT), with the request's parameters as an object (a repeated parameter
 * keeps its first value, like the Rust SDK's `param`), and only the parts the
 * stage has: no `user` or `id_token` in `credentials-exchange`, the ID token
 * as `{claims}` in `authorize`.
 *
 * @param {string} world `credentials-exchange` or `authorize`
 * @param {{toJson(): string}} event the `event` resource the host lent
 * @returns {object}
 */
export function eventFromHost(world, event) {
  const data = JSON.parse(event.toJson());
  const params = {};
  for (const [name, value] of data.request.params) {
    if (!Object.hasOwn(params, name)) {
      Object.defineProperty(params, name, { value, enumerable: true, writable: true, configurable: true });
    }
  }
  data.request.params = params;
  if (world === "credentials-exchange") {
    delete data.user;
    delete data.id_token;
  } else {
    data.id_token = { claims: data.id_token?.claims ?? {} };
  }
  return data;
}

function deepFreeze(value) {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}

function alias(object, name, value) {
  Object.defineProperty(object, name, { value, enumerable: false });
}

/**
 * A read-only mapping whose entries are looked up one by one: `map.NAME`,
 * `map.get(NAME)`, `NAME in map`. It cannot be listed, so `JSON.stringify`
 * shows `{}` and secrets do not leak into logs.
 */
function lazyMap(lookup, methods) {
  const read = (name) => lookup(String(name)) ?? undefined;
  const all = { get: read, ...methods };
  return new Proxy(
    {},
    {
      get: (_, key) => (typeof key === "symbol" ? undefined : Object.hasOwn(all, key) ? all[key] : read(key)),
      has: (_, key) => typeof key === "string" && (Object.hasOwn(all, key) || read(key) !== undefined),
      set: () => false,
      defineProperty: () => false,
      deleteProperty: () => false,
    },
  );
}

/**
 * Turns plain event data into the `event` a plugin sees: adds Auth0's aliases
 * (`client.client_id`, `user.user_id`, `resource_server`, `accessToken` with
 * `customClaims` and `scope`, `request.body` for a POST and `request.query`
 * for a GET, `tenant.id`: the host name the request was sent to), freezes
 * it, and adds `secrets` and `config` backed by the host.
 *
 * `event.config.KEY` is the raw string the host returns (non-string TOML
 * values arrive as JSON text); `event.config.json(KEY)` parses it, falling
 * back to the raw string. Absent entries are `undefined`.
 *
 * @param {object} data event data, as {@link eventFromHost} returns; it is
 *   frozen and becomes part of the event
 * @param {{config(key: string): string | null | undefined, secret(name: string): string | null | undefined}} host
 * @returns {object} the frozen event
 */
export function makeEvent(data, host) {
  alias(data.client, "client_id", data.client.id);
  if (data.user) alias(data.user, "user_id", data.user.id);
  const { params, method } = data.request;
  alias(data.request, "body", method === "POST" ? params : {});
  alias(data.request, "query", method === "GET" ? params : {});
  for (const section of Object.values(data)) deepFreeze(section);
  const config = (key) => host.config(key) ?? undefined;
  const event = {
    ...data,
    secrets: lazyMap((name) => host.secret(name)),
    config: lazyMap(config, {
      json(key) {
        const text = config(String(key));
        if (text === undefined) return undefined;
        try {
          return JSON.parse(text);
        } catch {
          return text;
        }
      },
    }),
  };
  alias(event, "resource_server", event.api);
  let accessToken;
  Object.defineProperty(event, "accessToken", {
    get: () =>
      (accessToken ??= deepFreeze({ customClaims: { ...data.access_token.claims }, scope: [...data.access_token.scopes] })),
    enumerable: false,
  });
  alias(event, "tenant", Object.freeze({ id: data.request.hostname }));
  return Object.freeze(event);
}

// ---------------------------------------------------------------------------
// Logging

function stringify(value) {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/**
 * An error as one text: `Name: message` and the stack, if any.
 *
 * @param {unknown} error
 * @returns {string}
 */
export function describeError(error) {
  if (!(error instanceof Error)) return stringify(error);
  const head = `${error.name}: ${error.message}`;
  const stack = typeof error.stack === "string" ? error.stack.trimEnd() : "";
  if (stack === "" || stack.startsWith(head)) return stack || head;
  return `${head}\n${stack}`;
}

/**
 * Formats log arguments the way `console.log` roughly does: strings as they
 * are, errors with their stack, anything else as JSON, separated by spaces.
 *
 * @param {unknown[]} args
 * @returns {string}
 */
export function formatLog(args) {
  return args
    .map((arg) => (typeof arg === "string" ? arg : arg instanceof Error ? describeError(arg) : stringify(arg)))
    .join(" ");
}

/**
 * A logger with one method per level, each sending its formatted arguments to
 * `log(level, message)`.
 *
 * @param {(level: string, message: string) => void} log
 * @returns {{trace: Function, debug: Function, info: Function, warn: Function, error: Function}}
 */
function logger(log) {
  return Object.freeze(Object.fromEntries(LEVELS.map((level) => [level, (...args) => log(level, formatLog(args))])));
}

/**
 * A `console` whose methods write to `log(level, message)`: `log` and `info`
 * at info level, `debug`, `warn`, `error` and `trace` at their own.
 *
 * @param {(level: string, message: string) => void} log
 * @returns {object}
 */
export function createConsole(log) {
  const levels = logger(log);
  return Object.freeze({ ...levels, log: levels.info });
}

/** The host of the running component, once {@link wrap} has been called. */
let currentHost = null;

// QuickJS has no `console`: give plugins one that writes to the host's log.
// (In Node, where tests run, the real console stays.)
globalThis.console ??= createConsole((level, message) => {
  if (currentHost === null) {
    throw new Error(
      "console used at the top level of the plugin module, which runs at build time when there is no host: log inside the stage functions",
    );
  }
  currentHost.log(level, message);
});

// ---------------------------------------------------------------------------
// The api object

/**
 * Creates the `api` object of one call, and a function that reads what the
 * plugin asked for.
 *
 * `api.accessToken.setCustomClaim(name, value)`, `removeCustomClaim(name)`,
 * `addScope(scope)`, `removeScope(scope)`; `api.idToken.setCustomClaim`,
 * `removeCustomClaim`; `api.access.deny(code, description)` or
 * `api.access.deny(description)` (code `access_denied`); `api.log.info(...)`
 * and the other levels. Every one of these returns `api`. `api.cache.get`,
 * `set` and `delete` answer as Auth0's do (see {@link cacheApi}).
 *
 * Setting a claim twice keeps the last value; the last of adding and removing
 * a scope wins; the first denial wins and drops every other change. Auth0's
 * `api.access.deny("server_error", reason)` fails the call instead.
 *
 * @param {{log(level: string, message: string): void}} host
 * @param {HostCache} [cache] the plugin's host-side cache; without one (a
 *   plugin built before `tessera:cache`), `api.cache` calls throw
 * @returns {{api: object, outcome: () => {changes: object, denial: {code: string, description: string} | null}}}
 *   `api` is not frozen at the top level, so that mocks can add to it.
 */
export function createApi(host, cache) {
  const accessClaims = new Map();
  const idClaims = new Map();
  const added = [];
  const removed = [];
  let denial = null;

  const claimName = (name, where) => {
    if (typeof name !== "string" || name === "") {
      throw new TypeError(`${where}: the claim name must be a non-empty string, got ${stringify(name)}`);
    }
    return name;
  };
  const scopeName = (scope, where) => {
    if (typeof scope !== "string" || scope === "") {
      throw new TypeError(`${where}: the scope must be a non-empty string, got ${stringify(scope)}`);
    }
    return scope;
  };
  const move = (scope, from, to) => {
    const at = from.indexOf(scope);
    if (at !== -1) from.splice(at, 1);
    if (!to.includes(scope)) to.push(scope);
  };
  const claims = (claimsMap, token) => ({
    setCustomClaim(name, value) {
      const where = `api.${token}.setCustomClaim`;
      claimsMap.set(claimName(name, where), toWitValue(value, `${where}("${name}")`));
      return api;
    },
    removeCustomClaim(name) {
      claimsMap.set(claimName(name, `api.${token}.removeCustomClaim`), { tag: "null" });
      return api;
    },
  });

  const api = Object.assign(Object.create(REFUSING), {
    accessToken: Object.freeze({
      ...claims(accessClaims, "accessToken"),
      addScope(scope) {
        move(scopeName(scope, "api.accessToken.addScope"), removed, added);
        return api;
      },
      removeScope(scope) {
        move(scopeName(scope, "api.accessToken.removeScope"), added, removed);
        return api;
      },
    }),
    idToken: Object.freeze(claims(idClaims, "idToken")),
    access: Object.freeze({
      deny(...args) {
        const [code, description] = args.length >= 2 ? args : ["access_denied", args[0]];
        const witCode = code === SERVER_ERROR ? SERVER_ERROR : DENY_CODES.get(code);
        if (witCode === undefined) {
          throw new Error(
            `api.access.deny: unknown code ${stringify(code)}; use access_denied, invalid_scope, invalid_request, unauthorized_client, invalid_target or server_error`,
          );
        }
        if (typeof description !== "string") {
          throw new TypeError(`api.access.deny: the description must be a string, got ${stringify(description)}`);
        }
        denial ??= { code: witCode, description };
        return api;
      },
    }),
    log: logger((level, message) => host.log(level, message)),
    cache: cacheApi(cache, host),
  });

  const outcome = () => ({
    changes: {
      accessTokenClaims: [...accessClaims],
      idTokenClaims: [...idClaims],
      addScopes: [...added],
      removeScopes: [...removed],
    },
    denial,
  });
  return { api, outcome };
}

/**
 * The plugin's host-side cache, as the component imports it
 * (`tessera:cache/store@0.1.0`) and `testing.js` mocks it.
 *
 * @typedef {object} HostCache
 * @property {(key: string) => {value: string, expiresAt: number | bigint} | undefined | null} get
 * @property {(key: string, value: string, ttlMs: number | undefined) => number | bigint} set
 *   throws the host's reason (a string) when it stores nothing
 * @property {(key: string) => boolean} delete
 */

/**
 * `api.cache`, as in Auth0 Actions: `get(key)` is `{value, expires_at}` or
 * `undefined`; `set(key, value, {ttl} | {expires_at})` (milliseconds;
 * default 15 minutes, at most a day) is `{type: "success", record}` or, when
 * the host refuses (a key over 512 bytes, a value over 4 KiB), `{type:
 * "error", code: "refused", message}`; `delete(key)` is `{type: "success",
 * record}` with the removed entry, if any. Keys and values are strings.
 *
 * @param {HostCache | undefined} cache
 * @param {{log(level: string, message: string): void}} host
 */
function cacheApi(cache, host) {
  if (cache !== undefined && typeof cache === "object") {
    // One api.cache per cache and host: a component has one of each.
    const made = CACHE_APIS.get(cache);
    if (made?.host === host) return made.api;
    const api = makeCacheApi(cache, host);
    CACHE_APIS.set(cache, { host, api });
    return api;
  }
  return makeCacheApi(cache, host);
}

const CACHE_APIS = new WeakMap();

function makeCacheApi(cache, host) {
  const store = () => {
    if (cache === undefined) {
      throw new Error("api.cache needs the tessera:cache capability: rebuild the plugin with this SDK");
    }
    return cache;
  };
  const text = (value, what) => {
    if (typeof value !== "string") {
      throw new TypeError(`api.cache.${what} must be a string, got ${stringify(value)}`);
    }
    return value;
  };
  const record = (entry) => (entry ? { value: entry.value, expires_at: Number(entry.expiresAt) } : undefined);
  return Object.freeze({
    get(key) {
      return record(store().get(text(key, "get: the key")));
    },
    set(key, value, options = {}) {
      text(key, "set: the key");
      text(value, "set: the value");
      let ttl;
      if (options?.ttl !== undefined) ttl = Number(options.ttl);
      else if (options?.expires_at !== undefined) ttl = Number(options.expires_at) - Date.now();
      if (ttl !== undefined && !(Number.isFinite(ttl) && ttl >= 1)) {
        return { type: "error", code: "invalid_ttl", message: `the time to live must be 1 ms or more, got ${ttl}` };
      }
      try {
        const expiresAt = store().set(key, value, ttl === undefined ? undefined : Math.floor(ttl));
        return { type: "success", record: { value, expires_at: Number(expiresAt) } };
      } catch (error) {
        // The host's refusal: `result::err(reason)`, thrown by the binding.
        const message = String(error?.payload ?? error?.message ?? error);
        host.log("warn", `api.cache.set("${key}") stored nothing: ${message}`);
        return { type: "error", code: "refused", message };
      }
    },
    delete(key) {
      const cache = store();
      const entry = record(cache.get(text(key, "delete: the key")));
      cache.delete(key);
      return { type: "success", record: entry };
    },
  });
}

/**
 * Auth0 Actions `api` members that have no meaning in Tessera, and what to
 * use instead. The build refuses a plugin that uses one; at run time,
 * reading one throws with the same advice.
 */
export const UNSUPPORTED = Object.freeze({
  redirect:
    "a plugin cannot send the user elsewhere during sign-in: put the step in your application, or deny with api.access.deny(reason)",
  multifactor:
    "Tessera's sign-in has no multi-factor step driven by plugins: deny with api.access.deny(reason) when a factor is missing",
  authentication:
    "a plugin cannot add or challenge authentication methods: deny with api.access.deny(reason) instead",
  prompt: "plugins cannot render forms or prompts: collect the data in your application",
  samlResponse: "Tessera issues OAuth 2.0 and OpenID Connect tokens only, no SAML responses",
  session: "sign-in sessions belong to Tessera's sign-in page: plugins cannot revoke or change them",
  refreshToken: "refresh tokens follow the client's grants in tessera.toml: plugins cannot revoke them",
  user: "plugins cannot write the user store (setAppMetadata, setUserMetadata): put the value in a claim, or keep it with api.cache.set",
  validation: "Auth0's pre-user-registration validation has no counterpart: Tessera runs plugins only when tokens are issued",
  rules: "Auth0 Rules have no counterpart: port the rule into the Action itself",
  transaction: "plugins cannot change the transaction: the protocol parameters are fixed when plugins run",
});

/**
 * The prototype of every `api`: a getter for each member of
 * {@link UNSUPPORTED} that throws with its advice. (Inherited getters, made
 * once: a Proxy's trap would run on every use of `api`, and getters defined
 * per call cost as much, about a fifth of a warm call in QuickJS.)
 */
const REFUSING = Object.freeze(
  Object.create(
    Object.prototype,
    Object.fromEntries(
      Object.entries(UNSUPPORTED).map(([member, advice]) => [
        member,
        {
          get() {
            throw new Error(`api.${member} is not available in Tessera: ${advice}`);
          },
        },
      ]),
    ),
  ),
);

// ---------------------------------------------------------------------------
// The exports

const isThenable = (value) =>
  value !== null && (typeof value === "object" || typeof value === "function") && typeof value.then === "function";

/**
 * Settles what a stage function returned: a promise is run to its end with
 * `drain` (the component's job queue; see `jobs.js`). Throws what it rejected
 * with, or why it cannot settle.
 */
function settle(name, returned, drain) {
  if (!isThenable(returned)) return;
  let state = "pending";
  let reason;
  const settled = (next) => (value) => {
    state = next;
    reason = value;
  };
  Promise.resolve(returned).then(settled("fulfilled"), settled("rejected"));
  if (drain === undefined) {
    throw new Error(
      `${name} returned a Promise, but this component has no job queue to settle it: rebuild it with this SDK's build.mjs`,
    );
  }
  drain();
  if (state === "rejected") throw reason;
  if (state === "pending") {
    throw new Error(
      `${name} returned a Promise that never settled: it waits for something that does not happen during a plugin call ` +
        "(a timer, or I/O other than the host's calls)",
    );
  }
}

/** Runs one stage function on a WIT event; returns WIT changes or throws a WIT denial. */
function run(name, fn, data, host, capabilities) {
  const event = makeEvent(data, host);
  const { api, outcome } = createApi(host, capabilities.cache);
  Object.freeze(api);
  try {
    settle(name, fn(event, api), capabilities.drain);
  } catch (error) {
    host.log("error", `${name} failed: ${describeError(error)}`);
    throw error instanceof Error ? error : new Error(`${name} threw ${stringify(error)}`);
  }
  const { changes, denial } = outcome();
  if (denial?.code === SERVER_ERROR) {
    host.log("error", `${name} denied with server_error: ${denial.description}`);
    throw new Error(`${name} denied with server_error: ${denial.description}`);
  }
  if (denial !== null) throw denial;
  return changes;
}

/**
 * Wraps a plugin module into the component's WIT exports. Used by the entry
 * module that `build.mjs` generates:
 *
 * ```js
 * import { drain } from "../tessera/jobs.js";
 * import * as host from "tessera:plugin/host@0.2.0";
 * import * as cache from "tessera:cache/store@0.1.0";
 * import { wrap } from "../tessera/index.js";
 * import * as plugin from "../plugin.js";
 * export const { onCredentialsExchange, onAuthorize } = wrap(plugin, host, { cache, drain });
 * ```
 *
 * Each export converts the host's event (see {@link makeEvent}), calls the
 * plugin's function with it and a fresh `api` (see {@link createApi}), and
 * returns the WIT `changes` record, or throws the WIT `denial` record if the
 * plugin denied. A function that returns a promise has it settled first
 * (`capabilities.drain`). If the function throws or its promise rejects, the
 * error is written to the host's log at error level and rethrown as an
 * `Error`, which the component turns into a trap.
 *
 * @param {Record<string, unknown>} plugin the plugin module's namespace
 * @param {{log: Function, config: Function, secret: Function}} host the
 *   `tessera:plugin/host` import
 * @param {{cache?: HostCache, drain?: () => void}} [capabilities] the
 *   `tessera:cache/store` import, and `jobs.js`'s `drain`
 * @returns {{onCredentialsExchange?: Function, onAuthorize?: Function}} one
 *   export per stage the plugin defines
 * @throws {Error} if the plugin defines a stage under two names
 */
export function wrap(plugin, host, capabilities = {}) {
  currentHost = host;
  const exports = {};
  for (const stage of STAGES) {
    const found = stage.names.filter((name) => typeof plugin[name] === "function");
    if (found.length > 1) throw new Error(`the plugin defines both ${found.join(" and ")}; keep one`);
    if (found.length === 1) {
      const [name] = found;
      const fn = plugin[name];
      exports[stage.export] = (event) => run(name, fn, eventFromHost(stage.world, event), host, capabilities);
    }
  }
  return exports;
}
