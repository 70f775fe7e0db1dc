// The build's analysis of a plugin module: world, aliases, async functions.
// (Compiling needs componentize-qjs; see the README for an end-to-end build.)

import assert from "node:assert/strict";
import { test } from "node:test";

import { BuildError, analyze } from "../src/build.mjs";

/** Loads `source` as a module, as the build does with plugin.js. */
async function load(source) {
  return import(`data:text/javascript,${encodeURIComponent(source)}`);
}

async function plan(source) {
  return analyze(source, await load(source));
}

test("the world follows the stages the plugin defines", async () => {
  assert.equal((await plan("export function onCredentialsExchange() {}")).world, "credentials-exchange");
  assert.equal((await plan("export const onExecutePostLogin = () => {};")).world, "authorize");
  const both = await plan("export function onAuthorize() {}\nexport function onExecuteCredentialsExchange() {}");
  assert.equal(both.world, "plugin");
  assert.deepEqual(both.stages, [
    { world: "credentials-exchange", name: "onExecuteCredentialsExchange" },
    { world: "authorize", name: "onAuthorize" },
  ]);
  assert.equal(both.source, null, "plain functions are left as written");
});

test("a module without stage functions, or with one twice, is refused", async () => {
  await assert.rejects(plan("export const x = 1;"), {
    name: "Error",
    message:
      /^exports no stage function: export onCredentialsExchange\(event, api\) \(or onExecuteCredentialsExchange\) and\/or onAuthorize/,
  });
  await assert.rejects(plan("export function onAuthorize() {}\n\nexport function onExecutePostLogin() {}"), (error) => {
    assert.ok(error instanceof BuildError);
    assert.equal(error.message, "defines both onAuthorize and onExecutePostLogin; keep one");
    assert.equal(error.line, 3);
    return true;
  });
  await assert.rejects(plan("export const onAuthorize = 'x';"), /exports onAuthorize, but it is a string/);
  await assert.rejects(plan("export function* onAuthorize() {}"), /onAuthorize is a generator function/);
});

test("an async stage function that never awaits is made synchronous in place", async () => {
  const source = [
    "// await in a comment, and in a string, are not awaits",
    "export const onExecuteCredentialsExchange = async (event, api) => {",
    '  api.log.info("no await here", `https://${event.request.hostname}/`); // await',
    "};",
  ].join("\n");
  const { source: prepared } = await plan(source);
  assert.equal(prepared, source.replace("= async (", "=       ("), "same lines and columns");
  const { onExecuteCredentialsExchange } = await load(prepared);
  assert.equal(Object.prototype.toString.call(onExecuteCredentialsExchange), "[object Function]");

  const both = await plan("export async function onAuthorize() {}\nexport const onCredentialsExchange = onAuthorize;");
  assert.equal(
    both.source,
    "export       function onAuthorize() {}\nexport const onCredentialsExchange = onAuthorize;",
  );
});

test("an async stage function that awaits is refused at the line of the await", async () => {
  await assert.rejects(plan("export async function onAuthorize(event, api) {\n\n  const x = await 1;\n}"), (error) => {
    assert.ok(error instanceof BuildError);
    assert.match(error.message, /^onAuthorize uses await, but a Tessera plugin runs without an event loop/);
    assert.equal(error.line, 3);
    return true;
  });
});
