// Signs a user in on Tessera's login page in headless Chromium and exchanges
// the code for tokens. Driven by tests/integration/browser.rs, which starts
// Tessera and checks the tokens this prints (one JSON line on stdout).
//
// Usage: node sign_in.mjs BASE_URL CLIENT_ID REDIRECT_URI EMAIL PASSWORD AUDIENCE SCREENSHOT
import { createHash, randomBytes } from "node:crypto";
import { chromium } from "playwright-core";

const [base, clientId, redirectUri, email, password, audience, screenshot] = process.argv.slice(2);
const b64url = (buf) => buf.toString("base64").replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const verifier = b64url(randomBytes(32));
const challenge = b64url(createHash("sha256").update(verifier).digest());
const state = b64url(randomBytes(12));

const url = new URL("/authorize", base);
for (const [k, v] of Object.entries({
  response_type: "code", client_id: clientId, redirect_uri: redirectUri, scope: "openid email offline_access read:orders",
  audience, state, nonce: "browser-nonce", code_challenge: challenge, code_challenge_method: "S256",
})) url.searchParams.set(k, v);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage();
  let callback = null;
  // The application is not running here: answer its redirect URI ourselves.
  await page.route(redirectUri.replace(/\/[^/]*$/, "/**"), async (route) => {
    callback = new URL(route.request().url());
    await route.fulfill({ status: 200, contentType: "text/html", body: "<p>signed in</p>" });
  });
  await page.goto(url.toString());
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill("not the password");
  await page.getByRole("button", { name: "Sign in" }).click();
  const alert = await page.getByRole("alert").textContent();
  await page.getByLabel("Password").fill(password);
  if (screenshot) await page.screenshot({ path: screenshot });
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL((u) => u.toString().startsWith(redirectUri), { timeout: 15000 });
  if (!callback) throw new Error("the redirect URI was never reached");
  if (callback.searchParams.get("state") !== state) throw new Error("state mismatch");
  const code = callback.searchParams.get("code");
  const tokens = await fetch(new URL("/oauth/token", base), {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "authorization_code", client_id: clientId, code, redirect_uri: redirectUri, code_verifier: verifier }),
  }).then((r) => r.json());
  console.log(JSON.stringify({ alert, iss: callback.searchParams.get("iss"), tokens }));
} finally {
  await browser.close();
}
