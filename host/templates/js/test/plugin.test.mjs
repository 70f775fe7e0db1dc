// Unit tests, run natively with `npm test` (no WebAssembly needed).
import assert from "node:assert/strict";
import { test } from "node:test";

import { onCredentialsExchange } from "../plugin.js";
import { mockApi, mockEvent } from "../tessera/testing.js";

test("puts the client name and tier into the access token", () => {
  const event = mockEvent({
    client: { id: "acme-sync", name: "ACME order sync", app_type: "machine", metadata: { tier: "gold" } },
    config: { namespace: "https://claims.example.com/" },
  });
  const api = mockApi();

  onCredentialsExchange(event, api);

  assert.equal(api.denial, null);
  assert.equal(api.changes.accessTokenClaims["https://claims.example.com/client_name"], "ACME order sync");
  assert.equal(api.changes.accessTokenClaims["https://claims.example.com/tier"], "gold");
});
