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

test("async stage functions and CommonJS Actions are accepted as written", async () => {
  const plan = analyze("exports.onExecutePostLogin = async (event, api) => { await 1; };", {
    onExecutePostLogin: async () => {},
  });
  assert.equal(plan.world, "authorize");
});

test("Auth0 api members Tessera does not have are refused at their line, with what to use", async () => {
  const source = [
    "exports.onExecutePostLogin = async (event, api) => {",
    '  // api.redirect in a comment is not a use; "api.session" in a string neither',
    "  if (event.user.app_metadata.pending) {",
    '    api.redirect.sendUserTo("https://example.com/finish");',
    "  }",
    "};",
  ].join("\n");
  assert.throws(
    () => analyze(source, { onExecutePostLogin: async () => {} }),
    (error) => {
      assert.ok(error instanceof BuildError);
      assert.equal(error.line, 4);
      assert.match(error.message, /^uses api\.redirect, which Tessera does not have: a plugin cannot send the user/);
      return true;
    },
  );
  assert.throws(
    () => analyze("exports.onExecutePostLogin = (e, api) => api?.user.setAppMetadata('a', 1);", { onExecutePostLogin() {} }),
    /uses api\.user, which Tessera does not have: plugins cannot write the user store/,
  );
});
