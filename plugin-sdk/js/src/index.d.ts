/**
 * Types of the Tessera plugin SDK for JavaScript, for editors.
 *
 * A plugin (`plugin.js`) imports nothing; to get completion and checks, name
 * the types in JSDoc:
 *
 * ```js
 * /** @type {import("./tessera/index.js").OnCredentialsExchange} *\/
 * export function onCredentialsExchange(event, api) { ... }
 * ```
 */

import type { HostApi, HostClient, HostRequest, HostTokenState, HostTransaction, HostUser, JsonValue, Metadata } from "./event.js";

// The event's parts are generated from the WIT (`event.d.ts`, by `cargo xtask
// gen`); the facade adds Auth0's aliases and the request's parameters as an
// object.
export type { AppType, JsonValue, Metadata } from "./event.js";

/** The application asking for a token, authenticated by Tessera. */
export interface Client extends HostClient {
  /** Auth0's name for {@link Client.id}. */
  readonly client_id: string;
}

/** The API (resource server) a token is for. */
export type ResourceServer = HostApi;

/** The signed-in user (authorize stage). */
export interface User extends HostUser {
  /** Auth0's name for {@link User.id}. */
  readonly user_id: string;
}

/** The HTTP request that started the transaction. */
export interface Request extends Omit<HostRequest, "params"> {
  /** The request parameters (first value of each); secrets, codes and verifiers are never included. */
  readonly params: Readonly<Record<string, string>>;
  /** Auth0's name for the parameters of a POST (`{}` otherwise). */
  readonly body: Readonly<Record<string, string>>;
  /** Auth0's name for the parameters of a GET (`{}` otherwise). */
  readonly query: Readonly<Record<string, string>>;
}

/** The protocol state of the token request. */
export type Transaction = HostTransaction;

/** A token as shaped by the plugins that ran before this one. */
export type TokenState = HostTokenState;

/** The plugin's secrets, looked up one at a time; absent ones are `undefined`. */
export type Secrets = Readonly<Record<string, string | undefined>> & {
  /** The secret `name`, or `undefined`. */
  get(name: string): string | undefined;
};

/**
 * The plugin's `config` table, looked up one key at a time. Values are the
 * raw strings Tessera passes (non-string TOML values as JSON text); absent
 * keys are `undefined`.
 */
export type Config = Readonly<Record<string, string | undefined>> & {
  /** The raw value of `key`, or `undefined`. */
  get(key: string): string | undefined;
  /** The value of `key` parsed as JSON, the raw string if it is not JSON, or `undefined`. */
  json(key: string): JsonValue | undefined;
};

/** The access token so far, under Auth0's names. */
export interface Auth0AccessToken {
  readonly customClaims: Metadata;
  readonly scope: readonly string[];
}

/** Input of the credentials-exchange stage (client credentials grant). */
export interface CredentialsExchangeEvent {
  readonly client: Client;
  readonly api: ResourceServer;
  /** Auth0's name for {@link CredentialsExchangeEvent.api}. */
  readonly resource_server: ResourceServer;
  readonly request: Request;
  readonly transaction: Transaction;
  readonly access_token: TokenState;
  /** Auth0's view of {@link CredentialsExchangeEvent.access_token}. */
  readonly accessToken: Auth0AccessToken;
  /** Auth0's tenant: here the host name the request was sent to. */
  readonly tenant: { readonly id: string };
  readonly secrets: Secrets;
  readonly config: Config;
}

/** Input of the authorize stage (a user signed in). */
export interface AuthorizeEvent {
  readonly client: Client;
  /** `null` when only OpenID Connect scopes were asked for. */
  readonly api: ResourceServer | null;
  /** Auth0's name for {@link AuthorizeEvent.api}. */
  readonly resource_server: ResourceServer | null;
  readonly user: User;
  readonly request: Request;
  readonly transaction: Transaction;
  readonly access_token: TokenState;
  /** Auth0's view of {@link AuthorizeEvent.access_token}. */
  readonly accessToken: Auth0AccessToken;
  /** Auth0's tenant: here the host name the request was sent to. */
  readonly tenant: { readonly id: string };
  readonly id_token: { readonly claims: Metadata };
  readonly secrets: Secrets;
  readonly config: Config;
}

/** The OAuth error a denial becomes (either spelling). */
export type DenyCode =
  | "access_denied"
  | "invalid_scope"
  | "invalid_request"
  | "unauthorized_client"
  | "invalid_target"
  | "server_error"
  | "access-denied"
  | "invalid-scope"
  | "invalid-request"
  | "unauthorized-client"
  | "invalid-target";

/** A logger: arguments are joined like `console.log` does. */
export interface Logger {
  trace(...args: unknown[]): void;
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

/** What a plugin can change. Every method returns the `api` object. */
export interface Api {
  readonly accessToken: {
    /** Sets a custom claim (any JSON value; `null` removes it). Reserved claims fail the plugin. */
    setCustomClaim(name: string, value: JsonValue | Date): Api;
    /** Removes a custom claim an earlier plugin set. */
    removeCustomClaim(name: string): Api;
    /** Adds a scope (authorize stage only, within the API's policy). */
    addScope(scope: string): Api;
    /** Removes a scope. */
    removeScope(scope: string): Api;
  };
  /** The ID token (authorize stage only). */
  readonly idToken: {
    setCustomClaim(name: string, value: JsonValue | Date): Api;
    removeCustomClaim(name: string): Api;
  };
  readonly access: {
    /** Fails the request with an OAuth error; other changes are dropped. */
    deny(code: DenyCode, description: string): Api;
    /** Fails the request with `access_denied`. */
    deny(description: string): Api;
  };
  /** Writes to the request's trace and the issuer's log. */
  readonly log: Logger;
  /** The plugin's host-side cache (Auth0's `api.cache`). */
  readonly cache: Cache;
}

/** A cached entry. */
export interface CacheRecord {
  readonly value: string;
  /** Milliseconds since the epoch. */
  readonly expires_at: number;
}

/** The plugin's host-side cache: per plugin name, kept across requests and reloads. */
export interface Cache {
  /** The entry, or `undefined` when absent or expired. */
  get(key: string): CacheRecord | undefined;
  /** Stores `value` for `ttl` ms (default 15 minutes, at most a day), or until `expires_at`. */
  set(
    key: string,
    value: string,
    options?: { ttl?: number; expires_at?: number },
  ): { type: "success"; record: CacheRecord } | { type: "error"; code: string; message: string };
  /** Removes the entry. */
  delete(key: string): { type: "success"; record: CacheRecord | undefined };
}

/** The credentials-exchange stage function (alias `onExecuteCredentialsExchange`). */
export type OnCredentialsExchange = (event: CredentialsExchangeEvent, api: Api) => void | Promise<void>;

/** The authorize stage function (alias `onExecutePostLogin`). */
export type OnAuthorize = (event: AuthorizeEvent, api: Api) => void | Promise<void>;

// The runtime, used by the generated entry module and the SDK's tests.

/** The `tessera:plugin/host` import. */
export interface Host {
  log(level: "trace" | "debug" | "info" | "warn" | "error", message: string): void;
  config(key: string): string | null | undefined;
  secret(name: string): string | null | undefined;
}

/** A WIT `value`. */
export type WitValue =
  | { tag: "null" }
  | { tag: "boolean"; val: boolean }
  | { tag: "integer"; val: number | bigint }
  | { tag: "number"; val: number }
  | { tag: "text"; val: string }
  | { tag: "text-list"; val: string[] }
  | { tag: "json"; val: string };

/** Wraps a plugin module into the component's WIT exports. */
export function wrap(
  plugin: Record<string, unknown>,
  host: Host,
): { onCredentialsExchange?: (event: object) => object; onAuthorize?: (event: object) => object };

/** A JavaScript value as a WIT `value`; throws for what JSON cannot carry. */
export function toWitValue(value: unknown, what?: string): WitValue;

/** A WIT `value` as a JavaScript value. */
export function fromWitValue(value: WitValue): unknown;

/** A `console` writing to `log(level, message)`. */
export function createConsole(
  log: (level: string, message: string) => void,
): Logger & { log(...args: unknown[]): void };
