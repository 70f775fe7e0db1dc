/**
 * @file `fetch` for plugins, over the host's `tessera:egress/http@0.1.0`.
 *
 * A plugin reaches only the origins its `[[plugins]] egress` lists, within
 * its deadline, reading back at most `egress_max_bytes`; the host enforces
 * that on every request, redirects included. This is the WHATWG `fetch`
 * that plugins use, in the part that makes sense in a token hook:
 *
 * - `fetch(url, { method, headers, body, redirect, timeoutMs })` returns a
 *   promise of a response with `status`, `ok`, `statusText` (empty),
 *   `url`, `redirected`, `headers.get/has/forEach/entries`, and `text()`,
 *   `json()`, `arrayBuffer()`;
 * - `body` is a string (sent as UTF-8), a `Uint8Array` or an `ArrayBuffer`;
 *   `JSON.stringify` objects first;
 * - redirects are followed (at most 5) unless `redirect` is `"manual"`
 *   (the 3xx is the answer) or `"error"`; a 303, or a 301/302 after a POST,
 *   continues as a GET without a body;
 * - a refusal, a timeout, a body over the cap or a network failure rejects
 *   with a `TypeError` saying which, as `fetch` does; `error.cause` is
 *   `{ tag, val }` from the host (`denied`, `timeout`, `too-large`,
 *   `invalid`, `failed`).
 *
 * The request is made when `fetch` is called: the host answers within the
 * call, so the promise is settled by the time the plugin awaits it.
 */

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;

/** UTF-8 bytes of `text` (QuickJS has no TextEncoder). */
export function utf8Encode(text) {
  const binary = unescape(encodeURIComponent(text));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** The text of UTF-8 `bytes`; bytes that are not UTF-8 read as Latin-1. */
export function utf8Decode(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  try {
    return decodeURIComponent(escape(binary));
  } catch {
    return binary;
  }
}

/** `location` resolved against `base` (QuickJS has no URL). */
export function resolveUrl(location, base) {
  if (/^[a-z][a-z0-9+.-]*:/i.test(location)) return location;
  const [, scheme, authority, path = "/"] = base.match(/^([a-z][a-z0-9+.-]*:)\/\/([^/?#]*)([^?#]*)/i) ?? [];
  if (scheme === undefined) throw new TypeError(`cannot resolve ${location} against ${base}`);
  if (location.startsWith("//")) return `${scheme}${location}`;
  if (location.startsWith("/")) return `${scheme}//${authority}${location}`;
  return `${scheme}//${authority}${path.slice(0, path.lastIndexOf("/") + 1)}${location}`;
}

function headerPairs(headers) {
  if (headers === undefined || headers === null) return [];
  const pairs = typeof headers.entries === "function" && !Array.isArray(headers) ? [...headers.entries()] : Array.isArray(headers) ? headers : Object.entries(headers);
  return pairs.map(([name, value]) => [String(name).toLowerCase(), String(value)]);
}

function bodyBytes(body) {
  if (body === undefined || body === null) return undefined;
  if (typeof body === "string") return utf8Encode(body);
  if (body instanceof Uint8Array) return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  throw new TypeError("fetch: the body must be a string, a Uint8Array or an ArrayBuffer (JSON.stringify objects)");
}

/** The response headers: lowercase names, repeated values joined by ", ". */
class Headers {
  #map = new Map();

  constructor(pairs) {
    for (const [name, value] of pairs) {
      const key = name.toLowerCase();
      this.#map.set(key, this.#map.has(key) ? `${this.#map.get(key)}, ${value}` : value);
    }
  }

  get(name) {
    return this.#map.get(String(name).toLowerCase()) ?? null;
  }

  has(name) {
    return this.#map.has(String(name).toLowerCase());
  }

  forEach(callback) {
    for (const [name, value] of this.#map) callback(value, name, this);
  }

  entries() {
    return this.#map.entries();
  }

  [Symbol.iterator]() {
    return this.#map.entries();
  }
}

/** A response read whole by the host. */
class Response {
  #body;

  constructor(answer, url, redirected) {
    this.status = answer.status;
    this.statusText = "";
    this.ok = answer.status >= 200 && answer.status < 300;
    this.url = url;
    this.redirected = redirected;
    this.headers = new Headers(answer.headers);
    this.#body = answer.body instanceof Uint8Array ? answer.body : Uint8Array.from(answer.body);
  }

  text() {
    return Promise.resolve(utf8Decode(this.#body));
  }

  json() {
    return this.text().then((text) => JSON.parse(text));
  }

  arrayBuffer() {
    return Promise.resolve(this.#body.slice().buffer);
  }
}

function failure(method, url, error) {
  const cause = error?.payload;
  const reason =
    cause === undefined
      ? String(error?.message ?? error)
      : cause.tag === "too-large"
        ? `the response is larger than ${cause.val} bytes (egress_max_bytes)`
        : `${cause.tag}: ${cause.val}`;
  return new TypeError(`fetch ${method} ${url} failed: ${reason}`, { cause });
}

/**
 * A `fetch` over `send`, the `tessera:egress/http` import's function.
 *
 * @param {(request: object) => {status: number, headers: [string, string][], body: Uint8Array}} send
 * @returns {(input: string | {url: string}, init?: object) => Promise<Response>}
 */
export function createFetch(send) {
  const fetchNow = (input, init) => {
    let url = typeof input === "string" ? input : String(input?.url ?? input);
    let method = String(init.method ?? "GET").toUpperCase();
    let headers = headerPairs(init.headers);
    let body = bodyBytes(init.body);
    const redirect = init.redirect ?? "follow";
    for (let hop = 0; ; hop++) {
      let answer;
      try {
        answer = send({ method, url, headers, body, timeoutMs: init.timeoutMs });
      } catch (error) {
        throw failure(method, url, error);
      }
      const location = answer.headers.find(([name]) => name === "location")?.[1];
      if (!REDIRECTS.has(answer.status) || location === undefined || redirect === "manual") {
        return new Response(answer, url, hop > 0);
      }
      if (redirect === "error") throw new TypeError(`fetch ${method} ${url}: redirected, and redirect is "error"`);
      if (hop === MAX_REDIRECTS) throw new TypeError(`fetch ${method} ${url}: more than ${MAX_REDIRECTS} redirects`);
      url = resolveUrl(location, url);
      if (answer.status === 303 || (method === "POST" && answer.status !== 307 && answer.status !== 308)) {
        method = "GET";
        body = undefined;
        headers = headers.filter(([name]) => name !== "content-type");
      }
    }
  };
  return (input, init = {}) => {
    try {
      return Promise.resolve(fetchNow(input, init));
    } catch (error) {
      return Promise.reject(error);
    }
  };
}
