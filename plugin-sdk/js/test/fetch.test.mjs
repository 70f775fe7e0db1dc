// fetch over the host's tessera:egress/http: a fake `send` stands in for
// the host, answering whole responses or throwing its WIT error.

import assert from "node:assert/strict";
import { test } from "node:test";

import { createFetch, resolveUrl, utf8Decode, utf8Encode } from "../src/fetch.js";

/** A host that answers from `routes` (URL → answer or error) and records requests. */
function host(routes) {
  const sent = [];
  const send = (request) => {
    sent.push(request);
    const route = routes[request.url];
    if (route === undefined) throw Object.assign(new Error("denied"), { payload: { tag: "denied", val: `${request.url} is not allowed` } });
    if (route.error) throw Object.assign(new Error(route.error.tag), { payload: route.error });
    return { status: route.status ?? 200, headers: route.headers ?? [], body: utf8Encode(route.body ?? "") };
  };
  return { fetch: createFetch(send), sent };
}

test("a GET answers status, headers and a body read as text or JSON", async () => {
  const { fetch, sent } = host({
    "https://crm.example.com/users/1": {
      headers: [["content-type", "application/json"], ["set-cookie", "a=1"], ["set-cookie", "b=2"]],
      body: '{"name":"Inês"}',
    },
  });
  const response = await fetch("https://crm.example.com/users/1", { headers: { Authorization: "Bearer t" } });
  assert.equal(response.status, 200);
  assert.equal(response.ok, true);
  assert.equal(response.redirected, false);
  assert.equal(response.headers.get("Content-Type"), "application/json");
  assert.equal(response.headers.get("set-cookie"), "a=1, b=2");
  assert.deepEqual(await response.json(), { name: "Inês" });
  assert.deepEqual(sent[0].headers, [["authorization", "Bearer t"]]);
  assert.equal(sent[0].method, "GET");
  assert.equal(sent[0].body, undefined);
});

test("a POST sends its body as UTF-8 bytes", async () => {
  const { fetch, sent } = host({ "https://crm.example.com/events": { status: 201 } });
  const response = await fetch("https://crm.example.com/events", { method: "post", body: JSON.stringify({ who: "Zoë" }) });
  assert.equal(response.status, 201);
  assert.equal(sent[0].method, "POST");
  assert.equal(utf8Decode(sent[0].body), '{"who":"Zoë"}');
  await assert.rejects(fetch("https://crm.example.com/events", { method: "POST", body: { not: "text" } }), {
    name: "TypeError",
    message: /the body must be a string, a Uint8Array or an ArrayBuffer/,
  });
});

test("redirects are followed through the host, each hop checked, at most five", async () => {
  const { fetch, sent } = host({
    "https://a.example/start": { status: 302, headers: [["location", "/next"]] },
    "https://a.example/next": { status: 307, headers: [["location", "https://b.example/end"]] },
    "https://b.example/end": { body: "done" },
    "https://a.example/away": { status: 301, headers: [["location", "https://evil.example/"]] },
    "https://a.example/loop": { status: 302, headers: [["location", "/loop"]] },
    "https://a.example/form": { status: 303, headers: [["location", "/thanks"]] },
    "https://a.example/thanks": { body: "thanks" },
  });
  const response = await fetch("https://a.example/start");
  assert.equal(await response.text(), "done");
  assert.equal(response.url, "https://b.example/end");
  assert.equal(response.redirected, true);
  assert.deepEqual(
    sent.map((r) => r.url),
    ["https://a.example/start", "https://a.example/next", "https://b.example/end"],
  );

  await assert.rejects(fetch("https://a.example/away"), (error) => {
    assert.ok(error instanceof TypeError);
    assert.match(error.message, /^fetch GET https:\/\/evil\.example\/ failed: denied: /);
    assert.equal(error.cause.tag, "denied");
    return true;
  });
  assert.equal((await fetch("https://a.example/away", { redirect: "manual" })).status, 301);
  await assert.rejects(fetch("https://a.example/loop"), /more than 5 redirects/);
  await assert.rejects(fetch("https://a.example/away", { redirect: "error" }), /redirect is "error"/);

  const before = sent.length;
  await fetch("https://a.example/form", { method: "POST", body: "x=1", headers: { "content-type": "text/plain" } });
  const [, thanks] = sent.slice(before);
  assert.deepEqual([thanks.method, thanks.body, thanks.headers], ["GET", undefined, []], "303: a GET without the body");
});

test("the host's errors reject with a TypeError that says which", async () => {
  const { fetch } = host({
    "https://slow.example/": { error: { tag: "timeout", val: "timed out within the plugin's deadline" } },
    "https://big.example/": { error: { tag: "too-large", val: 65536 } },
  });
  await assert.rejects(fetch("https://slow.example/"), /failed: timeout: timed out within the plugin's deadline/);
  await assert.rejects(fetch("https://big.example/"), /failed: the response is larger than 65536 bytes \(egress_max_bytes\)/);
});

test("URLs resolve and text round-trips without the engine's URL or TextEncoder", () => {
  assert.equal(resolveUrl("/b?x", "https://h.example:8443/a/c?q"), "https://h.example:8443/b?x");
  assert.equal(resolveUrl("d", "https://h.example/a/c"), "https://h.example/a/d");
  assert.equal(resolveUrl("//o.example/p", "http://h.example/"), "http://o.example/p");
  assert.equal(resolveUrl("https://o.example/", "http://h.example/"), "https://o.example/");
  const text = "añ€😀";
  assert.deepEqual([...utf8Encode(text)], [...new TextEncoder().encode(text)]);
  assert.equal(utf8Decode(new TextEncoder().encode(text)), text);
  assert.equal(utf8Decode(new Uint8Array([0xff, 0x41])), "\u00ffA", "not UTF-8: Latin-1");
});
