// Conversion between JavaScript values and the WIT `value` variant.

import assert from "node:assert/strict";
import { test } from "node:test";

import { fromWitValue, toWitValue } from "../src/index.js";

test("scalars map to their own cases", () => {
  assert.deepEqual(toWitValue(null), { tag: "null" });
  assert.deepEqual(toWitValue(true), { tag: "boolean", val: true });
  assert.deepEqual(toWitValue(-7), { tag: "integer", val: -7 });
  assert.deepEqual(toWitValue(Number.MAX_SAFE_INTEGER), { tag: "integer", val: Number.MAX_SAFE_INTEGER });
  assert.deepEqual(toWitValue(1.5), { tag: "number", val: 1.5 });
  assert.deepEqual(toWitValue(2 ** 60), { tag: "number", val: 2 ** 60 }, "beyond safe integers: a number");
  assert.deepEqual(toWitValue("x"), { tag: "text", val: "x" });
});

test("string arrays are text lists, other arrays and objects JSON", () => {
  assert.deepEqual(toWitValue(["a", "b"]), { tag: "text-list", val: ["a", "b"] });
  assert.deepEqual(toWitValue([]), { tag: "text-list", val: [] });
  assert.deepEqual(toWitValue(["a", 1]), { tag: "json", val: '["a",1]' });
  assert.deepEqual(toWitValue(["a", , "b"]), { tag: "json", val: '["a",null,"b"]' }, "a hole is not a string");
  assert.deepEqual(toWitValue({ k: [1, null] }), { tag: "json", val: '{"k":[1,null]}' });
  assert.deepEqual(toWitValue(new Date(0)), { tag: "json", val: '"1970-01-01T00:00:00.000Z"' });
});

test("values JSON cannot carry are refused with the claim's name", () => {
  assert.throws(() => toWitValue(NaN, 'claim "a"'), {
    name: "RangeError",
    message: 'claim "a": NaN is not a finite number',
  });
  assert.throws(() => toWitValue(-Infinity), RangeError);
  assert.throws(() => toWitValue(undefined, 'claim "b"'), {
    name: "TypeError",
    message: /^claim "b": undefined is not a JSON value/,
  });
  assert.throws(() => toWitValue(() => 1), { message: "value: a function is not a JSON value" });
  assert.throws(() => toWitValue(Symbol("s")), TypeError);
  assert.throws(() => toWitValue(10n), { name: "TypeError", message: /not representable as JSON/ });
  const cycle = {};
  cycle.self = cycle;
  assert.throws(() => toWitValue(cycle), /not representable as JSON/);
});

test("WIT values become JavaScript values", () => {
  assert.equal(fromWitValue({ tag: "null" }), null);
  assert.equal(fromWitValue({ tag: "boolean", val: false }), false);
  assert.equal(fromWitValue({ tag: "integer", val: 42 }), 42);
  assert.equal(fromWitValue({ tag: "integer", val: 42n }), 42, "a BigInt s64 (as jco passes it) too");
  assert.equal(fromWitValue({ tag: "number", val: -0.25 }), -0.25);
  assert.equal(fromWitValue({ tag: "text", val: "ünï" }), "ünï");
  assert.deepEqual(fromWitValue({ tag: "text-list", val: ["a"] }), ["a"]);
  assert.deepEqual(fromWitValue({ tag: "json", val: '{"a":[1,"b"]}' }), { a: [1, "b"] });
  assert.equal(fromWitValue({ tag: "json", val: "{not json" }), "{not json", "unparsable JSON stays text");
  assert.throws(() => fromWitValue({ tag: "nope" }), /unknown WIT value case "nope"/);
});

test("values round-trip", () => {
  for (const value of [
    null,
    false,
    0,
    Number.MIN_SAFE_INTEGER,
    -0.25,
    "",
    "ünïcode",
    [],
    ["a"],
    [1, 2],
    [["nested"]],
    {},
    { tier: "gold", limits: { rps: 10, burst: 2.5 }, tags: ["x"] },
  ]) {
    assert.deepEqual(fromWitValue(toWitValue(value)), value);
  }
});
